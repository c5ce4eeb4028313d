"""An OIP v2 inference request (JSON, or JSON + binary tensors) → validated items.

Inputs: `image` (BYTES: the encoded file; base64 text in JSON, raw bytes in the binary
extension, where JSON cannot carry them) and `text` (BYTES, UTF-8), both of shape [N] or [N, 1].
gzip/deflate request bodies (tritonclient's request compression) are inflated up to the body
limit, so compression cannot smuggle in a larger body.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from app.errors import (
    BadRequest,
    BodyTooLarge,
    InvalidRequest,
    InvalidUtf8,
    MissingField,
    TooManyItems,
    UnsupportedMediaType,
    validation_error,
)
from app.inputs import decode_base64_image, media_type, parse_json_bytes
from app.oip.schemas import InferRequest, TensorInput
from app.oip.tensors import flatten, split_bytes

HEADER_LENGTH = "inference-header-content-length"
INPUT_NAMES = ("image", "text")
MEDIA_TYPES = ("", "application/json", "application/octet-stream")
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True)
class OutputChoice:
    name: str
    binary: bool | None  # None: as the request's binary_data_output says


@dataclass(frozen=True)
class InferItems:
    images: list[bytes]
    texts: list[str]
    request_id: str | None
    outputs: list[OutputChoice] | None  # None: every output, each `binary_default`
    binary_default: bool


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"{where}: parameter {key!r} must be a boolean")
    return value


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in WBITS:
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not accepted (gzip, deflate)")
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest(f"the body is not valid {encoding} data") from None
    if len(out) > limit:
        raise BodyTooLarge(f"the inflated request body exceeds the limit of {limit} bytes")
    return out


def _split_header(body: bytes, declared: str | None) -> tuple[bytes, bytes]:
    if declared is None:
        return body, b""
    try:
        length = int(declared)
    except ValueError:
        raise BadRequest("Inference-Header-Content-Length is not an integer") from None
    if not 0 < length <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {length} is outside the body")
    return body[:length], body[length:]


def _raw_elements(tensor: TensorInput, binary: bytes, offset: int) -> tuple[list[Any], int]:
    size = tensor.parameters.get("binary_data_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidRequest(f"input {tensor.name!r}: needs `data` or a binary_data_size")
    if offset + size > len(binary):
        raise BadRequest(f"input {tensor.name!r}: binary_data_size {size} runs past the body")
    return list(split_bytes(binary[offset : offset + size], tensor.name)), offset + size


def _count(tensor: TensorInput) -> int:
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise InvalidRequest(f"input {tensor.name!r}: shape must be [N] or [N, 1] with N >= 1")
    return shape[0]


def _image(value: Any, binary: bool) -> bytes:
    if binary:
        return bytes(value)
    if not isinstance(value, str):
        raise InvalidRequest("input 'image': JSON elements must be base64 strings")
    return decode_base64_image(value)


def _text(value: Any, binary: bool) -> str:
    if binary:
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidUtf8("input 'text' is not valid UTF-8") from None
    if not isinstance(value, str):
        raise InvalidRequest("input 'text': JSON elements must be strings")
    return value


def parse_infer(header: bytes, binary: bytes, max_items: int) -> InferItems:
    """The JSON header and the bytes after it → items (every failure a ServiceError)."""
    try:
        req = InferRequest.model_validate(parse_json_bytes(header))
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from None
    by_name: dict[str, TensorInput] = {}
    for tensor in req.inputs:
        if tensor.name not in INPUT_NAMES:
            raise InvalidRequest(f"unknown input {tensor.name!r}; inputs are {list(INPUT_NAMES)}")
        if tensor.name in by_name:
            raise InvalidRequest(f"input {tensor.name!r} is given twice")
        by_name[tensor.name] = tensor
    if missing := [n for n in INPUT_NAMES if n not in by_name]:
        raise MissingField(f"missing input(s): {missing}")
    columns: dict[str, list[Any]] = {}
    counts, offset = set(), 0
    for tensor in req.inputs:  # binary tensors follow the JSON in the order of `inputs`
        if tensor.datatype != "BYTES":
            raise InvalidRequest(f"input {tensor.name!r}: datatype must be BYTES")
        count = _count(tensor)
        counts.add(count)
        if tensor.data is not None:
            columns[tensor.name] = flatten(tensor.data, tensor.name)
        else:
            columns[tensor.name], offset = _raw_elements(tensor, binary, offset)
        if len(columns[tensor.name]) != count:
            raise InvalidRequest(
                f"input {tensor.name!r}: shape says {count} elements, data has "
                f"{len(columns[tensor.name])}"
            )
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes after the tensors belong to no input")
    if len(counts) > 1:
        raise InvalidRequest(f"`image` and `text` must have the same N; got {sorted(counts)}")
    (count,) = counts
    if count > max_items:
        raise TooManyItems(f"{count} items; the limit is {max_items} (MAX_BATCH_ITEMS)")
    image_raw, text_raw = by_name["image"].data is None, by_name["text"].data is None
    outputs = None
    if req.outputs is not None:
        outputs = [
            OutputChoice(o.name, _flag(o.parameters, "binary_data", f"output {o.name!r}"))
            for o in req.outputs
        ]
    return InferItems(
        images=[_image(v, image_raw) for v in columns["image"]],
        texts=[_text(v, text_raw) for v in columns["text"]],
        request_id=req.id,
        outputs=outputs,
        binary_default=bool(_flag(req.parameters, "binary_data_output", "parameters")),
    )


async def read_infer(request: Request, max_body_bytes: int, max_items: int) -> InferItems:
    """Read, inflate and frame the body, then parse it."""
    kind = media_type(request)
    if kind not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not accepted; use application/json "
            "(or application/octet-stream with Inference-Header-Content-Length)"
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    body = _inflate(await request.body(), encoding, max_body_bytes)
    header, binary = _split_header(body, request.headers.get(HEADER_LENGTH))
    return parse_infer(header, binary, max_items)
