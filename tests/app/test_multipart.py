"""The one-buffer multipart split agrees with the strict streaming parser wherever it answers,
and hands every body it is not sure of to that parser (so errors keep their codes)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.datastructures import Headers

from app.errors import BadRequest, InvalidUtf8
from app.multipart import FormValue, _parse_strictly, boundary_of, parse_form, split_form

B = b"XyZ123"
LIMITS = {"max_files": 1, "max_fields": 8, "max_part_size": 1 << 20}


def _headers(boundary: bytes = B, extra: str = "") -> Headers:
    value = f"multipart/form-data; boundary={boundary.decode()}{extra}"
    return Headers(raw=[(b"content-type", value.encode())])


def _body(*parts: bytes, end: bytes = b"--" + B + b"--\r\n") -> bytes:
    return b"".join(b"--" + B + b"\r\n" + part + b"\r\n" for part in parts) + end


def _field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def _file(name: str, value: bytes, filename: str = "a.png") -> bytes:
    head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
    return (head + "Content-Type: image/png\r\n\r\n").encode() + value


def _strict(body: bytes, headers: Headers | None = None) -> dict[str, FormValue]:
    return asyncio.run(_parse_strictly(headers or _headers(), body, **LIMITS))


def _split(body: bytes) -> list[tuple[str, FormValue]] | None:
    return split_form(body, B, **LIMITS)


AGREE = {
    "image and text": _body(_file("image", b"\x89PNG\r\n--X\r\n\x00"), _field("text", b"chest")),
    "text first, utf-8": _body(_field("text", "café – ∅".encode()), _file("image", b"img")),
    "empty text and image": _body(_file("image", b""), _field("text", b"")),
    "model field": _body(_file("image", b"i"), _field("text", b"t"), _field("model", b"m")),
    "repeated name": _body(_field("text", b"a"), _field("text", b"b"), _file("image", b"i")),
    "no final CRLF": _body(_file("image", b"i"), _field("text", b"t"), end=b"--" + B + b"--"),
    "boundary-like data": _body(_file("image", b"--" + B + b"\r\n--" + B[:-1]), _field("t", b"x")),
    "semicolon in filename": _body(_file("image", b"i", filename="a;b.png"), _field("text", b"t")),
}

FALLBACK = {
    "invalid utf-8 text": _body(_field("text", b"caf\xe9"), _file("image", b"i")),
    "two files": _body(_file("image", b"i"), _file("other", b"j")),
    "no name": _body(b'Content-Disposition: form-data; filename="a"\r\n\r\nx'),
    "escaped quote": _body(b'Content-Disposition: form-data; name="a\\"b"\r\n\r\nx'),
    "rfc 2231 name": _body(b"Content-Disposition: form-data; name*=utf-8''a\r\n\r\nx"),
    "unquoted name": _body(b"Content-Disposition: form-data; name=text\r\n\r\nx"),
    "no headers": _body(b"\r\nx"),
    "header without colon": _body(b"Content-Disposition form-data\r\n\r\nx"),
    "garbage after boundary": _body(_field("text", b"x"), end=b"--" + B + b"xx"),
    "epilogue": _body(_field("text", b"x"), end=b"--" + B + b"--\r\nepilogue"),
    "preamble": b"preamble\r\n" + _body(_field("text", b"x")),
    "unterminated": b"--" + B + b"\r\n" + _field("text", b"x"),
    "broken framing": b"--x\r\nnot a header\r\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(AGREE))
def test_split_agrees_with_the_strict_parser(name: str) -> None:
    items = _split(AGREE[name])
    assert items is not None, "this plain body should not need the strict parser"
    assert dict(items) == _strict(AGREE[name])


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_unsure_bodies_go_to_the_strict_parser(name: str) -> None:
    assert _split(FALLBACK[name]) is None


def test_httpx_encoded_forms_take_the_split() -> None:
    request = httpx.Request(
        "POST",
        "http://x/predict",
        files={"image": ("scan.png", b"\x89PNG...", "image/png")},
        data={"text": "axial CT, 5 mm", "role": "student"},
    )
    body = request.read()
    boundary = boundary_of(request.headers["content-type"])
    assert boundary is not None
    items = split_form(body, boundary, **LIMITS)
    assert items is not None
    headers = Headers(raw=[(b"content-type", request.headers["content-type"].encode())])
    assert dict(items) == _strict(body, headers)
    assert dict(items)["image"] == b"\x89PNG..."


def test_a_charset_other_than_utf8_is_left_to_the_strict_parser() -> None:
    assert boundary_of("multipart/form-data; boundary=abc; charset=latin-1") is None
    assert boundary_of("multipart/form-data; boundary=abc; charset=UTF-8") == b"abc"
    assert boundary_of("multipart/form-data") is None


def test_limits_are_left_to_the_strict_parser() -> None:
    body = _body(_field("text", b"x" * 10), _file("image", b"i"))
    assert split_form(body, B, max_files=1, max_fields=8, max_part_size=5) is None
    many = _body(*(_field(f"f{i}", b"x") for i in range(9)))
    assert _split(many) is None


def test_errors_keep_their_codes() -> None:
    with pytest.raises(InvalidUtf8):
        asyncio.run(parse_form(_headers(), FALLBACK["invalid utf-8 text"], **LIMITS))
    with pytest.raises(BadRequest, match="invalid multipart body"):
        asyncio.run(parse_form(_headers(b"x"), FALLBACK["broken framing"], **LIMITS))
    with pytest.raises(BadRequest, match="Too many files"):
        asyncio.run(parse_form(_headers(), FALLBACK["two files"], **LIMITS))
