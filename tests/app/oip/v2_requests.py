"""Building OIP v2 request bodies by hand (JSON and binary-data extension) for the tests."""

from __future__ import annotations

import json
import struct
from typing import Any

from tests.app.helpers import b64


def bytes_tensor(elements: list[bytes]) -> bytes:
    """The binary extension's BYTES serialization: 4-byte little-endian length + bytes."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def json_request(images: list[bytes], texts: list[str], **extra: Any) -> dict[str, Any]:
    n = len(images)
    return {
        "inputs": [
            {"name": "image", "shape": [n], "datatype": "BYTES", "data": [b64(i) for i in images]},
            {"name": "text", "shape": [n], "datatype": "BYTES", "data": texts},
        ],
        **extra,
    }


def binary_request(
    images: list[bytes], texts: list[bytes], **extra: Any
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) with both inputs as binary tensors after the JSON header."""
    image_blob, text_blob = bytes_tensor(images), bytes_tensor(texts)
    header = {
        "inputs": [
            {"name": "image", "shape": [len(images)], "datatype": "BYTES",
             "parameters": {"binary_data_size": len(image_blob)}},
            {"name": "text", "shape": [len(texts)], "datatype": "BYTES",
             "parameters": {"binary_data_size": len(text_blob)}},
        ],
        **extra,
    }  # fmt: skip
    head = json.dumps(header).encode()
    return head + image_blob + text_blob, {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }


def split_response(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    if header_length is None:
        return json.loads(body), b""
    n = int(header_length)
    return json.loads(body[:n]), body[n:]


def assert_oip_error(response: Any, status: int, code: str) -> None:
    """The protocol's error shape, the stable code in X-Error-Code, no stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert response.headers["x-error-code"] == code
    assert "Traceback" not in response.text
