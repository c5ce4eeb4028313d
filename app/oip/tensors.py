"""Tensor encodings of OIP v2: nested JSON `data` flattened row-major; BYTES elements in the
binary-data extension as a 4-byte little-endian length followed by the bytes; FP32 as raw
little-endian floats."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.errors import BadRequest, InvalidRequest

LENGTH = struct.Struct("<I")


def flatten(data: Any, name: str) -> list[Any]:
    """`data` as the protocol allows it (flat or nested lists, row-major) → a flat list."""
    if not isinstance(data, list):
        raise InvalidRequest(f"input {name!r}: `data` must be a list")
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            if len(stack) > 8:
                raise InvalidRequest(f"input {name!r}: `data` is nested too deeply")
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def split_bytes(raw: bytes, name: str) -> list[bytes]:
    """A serialized BYTES tensor (binary extension) → its elements."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + LENGTH.size > len(raw):
            raise BadRequest(f"input {name!r}: truncated BYTES element length")
        (size,) = LENGTH.unpack_from(raw, offset)
        offset += LENGTH.size
        if offset + size > len(raw):
            raise BadRequest(f"input {name!r}: a BYTES element claims {size} bytes past the end")
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


def join_bytes(elements: Sequence[bytes]) -> bytes:
    """BYTES elements → the binary extension's serialization."""
    return b"".join(LENGTH.pack(len(e)) + e for e in elements)


def fp32_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()
