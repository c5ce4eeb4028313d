"""multipart/form-data from one buffered body: the common shape split with bytes.find, the rest
by the strict streaming parser.

Why: python-multipart calls back into Python per header byte run and per data chunk, and
Starlette spools each file part through a SpooledTemporaryFile — about a tenth of the event
loop's time per /predict (issue 26). The body is bounded by MAX_BODY_BYTES and the image is
held as bytes afterwards anyway, so it is read whole, once. A body this splitter is not sure of
(other framing, quoted escapes, RFC 2231 names, a charset, limits reached, invalid UTF-8) goes
through `StrictMultiPartParser` unchanged, so every error keeps its code and message.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import AsyncGenerator

from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException

from app.errors import BadRequest
from app.framework_compat import StrictMultiPartParser

FormValue = str | bytes  # bytes: a file part's content
_HEADER = re.compile(rb"([A-Za-z0-9-]+):[ \t]*([^\r\n]*)")
_DISPOSITION = re.compile(rb'form-data((?:; ?(?:name|filename)="[^"\\\r\n]*")+)')
_PARAM = re.compile(rb'; ?(name|filename)="([^"\\\r\n]*)"')


@functools.lru_cache(maxsize=64)
def boundary_of(content_type: str) -> bytes | None:
    """The boundary when the body is UTF-8 (no charset, or utf-8), else None."""
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset")
    if charset is not None:
        try:
            if codecs.lookup(charset.decode("latin-1")).name != "utf-8":
                return None
        except LookupError:
            return None
    boundary = params.get(b"boundary")
    return boundary or None


def split_form(
    body: bytes, boundary: bytes, max_files: int, max_fields: int, max_part_size: int
) -> list[tuple[str, FormValue]] | None:
    """The parts of a plainly framed body in order, or None when the strict parser must judge
    it (the split never refuses a body itself)."""
    delimiter = b"\r\n--" + boundary
    if not body.startswith(delimiter[2:] + b"\r\n"):
        return None
    items: list[tuple[str, FormValue]] = []
    files = fields = 0
    at = len(delimiter) - 2  # after the first line's "--boundary"
    while True:
        head_end = body.find(b"\r\n\r\n", at)
        end = body.find(delimiter, head_end + 4) if head_end >= 0 else -1
        if end < 0:
            return None
        head = body[at + 2 : head_end]
        part = None if boundary in head else _part_name(head)
        if part is None:
            return None
        name, is_file = part
        data = body[head_end + 4 : end]
        if is_file:
            files += 1
            items.append((name, data))
        else:
            fields += 1
            if len(data) > max_part_size:
                return None
            try:
                items.append((name, data.decode("utf-8")))
            except UnicodeDecodeError:
                return None
        if files > max_files or fields > max_fields:
            return None
        after = body[end + len(delimiter) : end + len(delimiter) + 2]
        if after == b"--":
            rest = body[end + len(delimiter) + 2 :]
            return items if rest in (b"", b"\r\n") else None
        if after != b"\r\n":
            return None
        at = end + len(delimiter)


def _part_name(head: bytes) -> tuple[str, bool] | None:
    """(field name, whether it is a file part) from plain part headers, else None."""
    disposition = None
    for line in head.split(b"\r\n"):
        match = _HEADER.fullmatch(line)
        if match is None:
            return None
        if match[1].lower() == b"content-disposition":
            if disposition is not None:
                return None
            disposition = match[2].rstrip(b" \t")
    if disposition is None or (match := _DISPOSITION.fullmatch(disposition)) is None:
        return None
    params = dict(_PARAM.findall(match[1]))
    if b"name" not in params or len(params) != len(_PARAM.findall(match[1])):
        return None  # no name, or a parameter given twice
    try:
        return params[b"name"].decode("utf-8"), b"filename" in params
    except UnicodeDecodeError:
        return None


async def parse_form(
    headers: Headers, body: bytes, max_files: int, max_fields: int, max_part_size: int
) -> dict[str, FormValue]:
    """Field name → text, or bytes for a file part (the last of a repeated name)."""
    boundary = boundary_of(headers.get("content-type", ""))
    if boundary is not None:
        items = split_form(body, boundary, max_files, max_fields, max_part_size)
        if items is not None:
            return dict(items)
    return await _parse_strictly(headers, body, max_files, max_fields, max_part_size)


async def _parse_strictly(
    headers: Headers, body: bytes, max_files: int, max_fields: int, max_part_size: int
) -> dict[str, FormValue]:
    async def one_chunk() -> AsyncGenerator[bytes, None]:
        yield body

    parser = StrictMultiPartParser(
        headers,
        one_chunk(),
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_part_size,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"invalid multipart body: {exc.message}") from None
    fields: dict[str, FormValue] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            fields[name] = await value.read()
            await value.close()
        else:
            fields[name] = value
    return fields
