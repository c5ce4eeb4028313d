"""Output tensors → an OIP v2 inference response: all JSON, or JSON + binary tensors.

Binary (the extension tritonclient asks for by default) is chosen per output (`binary_data`)
or for all of them (`binary_data_output`); the JSON part's length then goes in
`Inference-Header-Content-Length` and the tensors' bytes follow it in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi.responses import Response

from app.errors import InvalidRequest
from app.oip.outputs import OutputTensor
from app.oip.request import OutputChoice
from app.oip.tensors import fp32_bytes, join_bytes

HEADER_LENGTH = "Inference-Header-Content-Length"


def check_outputs(choices: Sequence[OutputChoice] | None, available: Sequence[str]) -> None:
    """Refuse unknown or repeated output names before any inference runs."""
    if choices is None:
        return
    names = [c.name for c in choices]
    if unknown := [n for n in names if n not in available]:
        raise InvalidRequest(f"unknown output(s) {unknown}; outputs are {list(available)}")
    if len(set(names)) != len(names):
        raise InvalidRequest("an output is requested twice")


def _raw(tensor: OutputTensor) -> bytes:
    if isinstance(tensor.values, np.ndarray):
        if tensor.datatype == "BOOL":  # one byte per element, as Triton encodes BOOL
            return np.ascontiguousarray(tensor.values, dtype=np.bool_).tobytes()
        return fp32_bytes(tensor.values)
    return join_bytes(tensor.values)


def _data(tensor: OutputTensor) -> list[Any]:
    if isinstance(tensor.values, np.ndarray):
        if tensor.datatype == "BOOL":
            return [bool(v) for v in tensor.values.reshape(-1)]
        return [float(v) for v in tensor.values.reshape(-1)]
    return [v.decode("utf-8") for v in tensor.values]


def infer_response(
    model: str,
    version: str,
    request_id: str | None,
    tensors: Sequence[OutputTensor],
    choices: Sequence[OutputChoice] | None,
    binary_default: bool,
) -> Response:
    by_name = {t.name: t for t in tensors}
    selected = (
        [(t, binary_default) for t in tensors]
        if choices is None
        else [(by_name[c.name], binary_default if c.binary is None else c.binary) for c in choices]
    )
    outputs, blobs = [], []
    for tensor, binary in selected:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        if binary:
            blob = _raw(tensor)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _data(tensor)
        outputs.append(entry)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if request_id is not None:
        body["id"] = request_id
    header = json.dumps(body, separators=(",", ":")).encode("utf-8")
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(blobs),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )
