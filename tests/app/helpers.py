"""Helpers shared by serving tests: settings, started clients, real and odd images."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from app.hooks import ServingHooks
from app.main import create_app
from app.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDPIX_IMAGE = REPO_ROOT / "examples" / "medpix-MPX1075_synpic20513.png"
WOUND_IMAGE = REPO_ROOT / "examples" / "wound-diabetic__117_0.jpg"
MEDPIX_TEXT = (
    "1.6 x 1.8cm right middle lobe nodule, adjacent/anterior to the medial segment bronchus."
)
WOUND_TEXT = (
    "The wound is with a small, irregular opening. The surrounding skin is red and swollen."
)


def tiny_settings(bundle_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: env-independent, small pools, CPU only."""
    values: dict[str, Any] = {
        "bundle_dir": bundle_dir,
        "preprocess_workers": 2,
        "intra_op_threads": 1,
        "max_delay_ms": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def started_client(
    settings: Settings, timeout_s: float = 60.0, hooks: ServingHooks | None = None
) -> Iterator[TestClient]:
    """TestClient with lifespan running and every bundle's loading finished (ready or failed)."""
    app = create_app(settings, hooks)
    with TestClient(app) as test_client:
        registry = app.state.service.registry
        deadline = time.monotonic() + timeout_s
        while not registry.loading_done:
            if time.monotonic() > deadline:
                raise TimeoutError("bundles did not finish loading")
            time.sleep(0.02)
        yield test_client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height with (almost) no pixel data: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [Image.new("P", (16, 16), i) for i in (1, 2)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def assert_error(response: Any, status: int, code: str) -> None:
    """The one error envelope, with the expected status and code, and no stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text


def assert_prediction(body: dict[str, Any], tasks: tuple[str, str]) -> None:
    assert set(body["predictions"]) == set(tasks)
    for task in tasks:
        pred = body["predictions"][task]
        probs = pred["probabilities"]
        assert abs(sum(probs.values()) - 1.0) < 1e-4
        assert pred["label"] == max(probs, key=probs.get)
        assert pred["probability"] == probs[pred["label"]]
    assert set(body["timing_ms"]) == {"queue", "preprocess", "inference", "total"}
