"""The bad-input catalogue: what clients really send, each answered with a specific status and a
stable error code (or accepted, where the input is odd but valid), and the server still healthy.

The service runs with its default limits (10 MiB body, 5000 characters, 40 MP, 32 batch items).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    animated_gif,
    assert_error,
    assert_prediction,
    b64,
    encode,
    png_header_only,
    started_client,
    tiny_settings,
)
from tests.app.reliability import images

IMAGE = MEDPIX_IMAGE.read_bytes()
BOUNDARY = "catalogue-boundary"
MEDPIX_TASKS = ("modality", "location")
JSON = "application/json"
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]


def _json(payload: Any) -> dict[str, Any]:
    return {"method": "POST", "url": "/predict", "json": payload}


def _item(image: bytes, text: str = "x", **extra: Any) -> dict[str, Any]:
    return _json({"image": b64(image), "text": text, **extra})


def _raw(body: bytes, content_type: str | None, url: str = "/predict") -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    return {"method": "POST", "url": url, "content": body, "headers": headers}


def _form(image: bytes | None, text: bytes | None, filename: str = "upload.png") -> dict[str, Any]:
    """multipart/form-data built by hand, so field bytes (e.g. invalid UTF-8) go out as given."""
    parts = []
    if image is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + image
            + b"\r\n"
        )
    if text is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
            + text
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return _raw(body, f"multipart/form-data; boundary={BOUNDARY}")


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[], dict[str, Any]]
    status: int
    code: str | None  # None: accepted (200)


CATALOGUE = [
    # bodies and fields
    Case("empty body (JSON)", lambda: _raw(b"", JSON), 400, "invalid_json"),
    Case("empty body (no content type)", lambda: _raw(b"", None), 415, "unsupported_media_type"),
    Case(
        "empty multipart body",
        lambda: _raw(b"", f"multipart/form-data; boundary={BOUNDARY}"),
        422,
        "missing_field",
    ),
    Case("missing image (JSON)", lambda: _json({"text": "x"}), 422, "missing_field"),
    Case("missing image (form)", lambda: _form(None, b"x"), 422, "missing_field"),
    Case("missing text (JSON)", lambda: _json({"image": b64(IMAGE)}), 422, "missing_field"),
    Case("missing text (form)", lambda: _form(IMAGE, None), 422, "missing_field"),
    Case("empty text: the bundle's fallback text", lambda: _item(IMAGE, ""), 200, None),
    Case("text of 1 MB", lambda: _item(IMAGE, "a" * 1_000_000), 422, "text_too_long"),
    Case("text of 1 MB (form)", lambda: _form(IMAGE, b"a" * 1_000_000), 422, "text_too_long"),
    Case(
        "invalid UTF-8 in a JSON body",
        lambda: _raw(b'{"image": "", "text": "\xff\xfe"}', JSON),
        422,
        "invalid_utf8",
    ),
    Case(
        "invalid UTF-8 text (form)", lambda: _form(IMAGE, b"caption \xc3\x28"), 422, "invalid_utf8"
    ),
    Case(
        "lone surrogate escaped in JSON text",
        lambda: _raw(json.dumps({"image": b64(IMAGE), "text": "a \udc80"}).encode(), JSON),
        422,
        "invalid_utf8",
    ),
    Case("not JSON", lambda: _raw(b'{"image": ', JSON), 400, "invalid_json"),
    Case("JSON array body", lambda: _json([1, 2]), 422, "invalid_request"),
    Case(
        "JSON with wrong types", lambda: _json({"image": 5, "text": ["x"]}), 422, "invalid_request"
    ),
    Case("unknown JSON field", lambda: _item(IMAGE, colour="red"), 422, "invalid_request"),
    Case("text/plain body", lambda: _raw(b"hello", "text/plain"), 415, "unsupported_media_type"),
    Case(
        "broken multipart framing",
        lambda: _raw(b"--x\r\nnot a header\r\n", "multipart/form-data; boundary=x"),
        400,
        "bad_request",
    ),
    Case(
        "base64 that is not base64",
        lambda: _json({"image": "this is *not* base64!", "text": "x"}),
        422,
        "invalid_base64",
    ),
    # images
    Case("zero-byte image (JSON)", lambda: _item(b""), 422, "empty_image"),
    Case("zero-byte image (form)", lambda: _form(b"", b"x"), 422, "empty_image"),
    Case("truncated JPEG", lambda: _item(images.truncated_jpeg()), 422, "invalid_image"),
    Case(
        "random bytes named .png",
        lambda: _form(bytes(range(256)) * 8, b"x", filename="scan.png"),
        415,
        "unsupported_image",
    ),
    Case(
        "a PDF",
        lambda: _item(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
        415,
        "unsupported_image",
    ),
    Case(
        "an SVG",
        lambda: _item(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>'),
        415,
        "unsupported_image",
    ),
    Case(
        "a GIF animation (GIF not accepted)",
        lambda: _item(animated_gif()),
        415,
        "unsupported_image",
    ),
    Case("an animated PNG", lambda: _item(images.animated_png()), 415, "animated_image"),
    Case("a 1x1 image", lambda: _item(encode(Image.new("RGB", (1, 1)))), 422, "image_too_small"),
    Case(
        "20000x20000 PNG bomb (header only: refused before decoding)",
        lambda: _item(png_header_only(20000, 20000)),
        413,
        "image_too_large",
    ),
    Case("16-bit PNG", lambda: _item(images.sixteen_bit_png()), 200, None),
    Case("CMYK JPEG", lambda: _item(images.cmyk_jpeg()), 200, None),
    Case(
        "palette PNG with transparency",
        lambda: _item(images.palette_png_with_transparency()),
        200,
        None,
    ),
    Case("EXIF-rotated JPEG", lambda: _item(images.exif_rotated_jpeg()), 200, None),
    # routing, models, batches, size
    Case("unknown model", lambda: _item(IMAGE, model="no-such-model"), 404, "unknown_model"),
    Case("unknown role", lambda: _item(IMAGE, role="intern"), 422, "unknown_role"),
    Case(
        "batch over the item limit",
        lambda: {
            "method": "POST",
            "url": "/predict/batch",
            "json": {"items": [{"image": "", "text": ""}] * (DEFAULTS.max_batch_items + 1)},
        },
        422,
        "too_many_items",
    ),
    Case(
        "multipart body over the size limit",
        lambda: _form(b"\0" * DEFAULTS.max_body_bytes, b"x"),
        413,
        "body_too_large",
    ),
    Case("unknown route", lambda: {"method": "GET", "url": "/predictions"}, 404, "not_found"),
    Case("wrong method", lambda: {"method": "GET", "url": "/predict"}, 405, "method_not_allowed"),
]


@pytest.fixture(scope="module")
def service(tiny_bundle_dir: Path) -> Iterator[TestClient]:
    with started_client(tiny_settings(tiny_bundle_dir, models=["medpix-student"])) as client:
        yield client


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_bad_input_catalogue(service: TestClient, case: Case) -> None:
    response = service.request(**case.request())
    if case.code is None:
        assert response.status_code == 200, response.text
        assert_prediction(response.json(), MEDPIX_TASKS)
    else:
        assert_error(response, case.status, case.code)
    # and the server is still healthy: ready, and answering a real request
    assert service.get("/health/ready").status_code == 200
    ok = service.post("/predict", json={"image": b64(IMAGE), "text": MEDPIX_TEXT})
    assert ok.status_code == 200, ok.text


def test_catalogue_covers_the_issue() -> None:
    assert len(CATALOGUE) >= 20
    assert len({c.name for c in CATALOGUE}) == len(CATALOGUE)


def test_oversized_multipart_is_not_read_into_memory(tmp_path: Path) -> None:
    """A chunked (no Content-Length) upload 40x the limit: reading stops right after the limit."""
    limit, chunk = 256 * 1024, 64 * 1024
    app = create_app(tiny_settings(tmp_path, max_body_bytes=limit))
    pulled = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal pulled
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.png"'
            "\r\nContent-Type: image/png\r\n\r\n"
        ).encode()
        pulled += len(head)
        yield head
        for _ in range(40 * limit // chunk):
            pulled += chunk
            yield b"\x89" * chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/predict",
                content=upload(),
                headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )

    response = asyncio.run(scenario())
    assert_error(response, 413, "body_too_large")
    assert pulled <= limit + 2 * chunk  # 10 MiB offered, ~limit read


def test_base64_image_in_a_form_field_is_refused(service: TestClient) -> None:
    """A multipart `image` sent as a plain field (not a file part) is a clear 422, not a crash."""
    fields = {"image": (None, base64.b64encode(IMAGE).decode()), "text": (None, "x")}
    response = service.post("/predict", files=fields)
    assert_error(response, 422, "invalid_request")
