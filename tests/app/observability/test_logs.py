"""Structured access logs: one line per request, with model, status, timings and request id,
and never the request's text or image content (medical data) — whatever the path or outcome."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from app.observability.logging_setup import JsonFormatter, TextFormatter
from tests.app.helpers import MEDPIX_IMAGE, encode, started_client, tiny_settings

SECRET = "Zorblax-Quixotic-7731 patient Wilhelmina Featherstonehaugh"
IMAGE_MARK = "IMGMARK-Gloaming-5519"


def _marked_png() -> bytes:
    """A real image whose bytes carry a distinctive text chunk (as metadata can carry names)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", IMAGE_MARK)
    with Image.open(MEDPIX_IMAGE) as img:
        return encode(img.convert("RGB"), "PNG", pnginfo=info)


def _needles(image: bytes) -> list[str]:
    b64 = base64.b64encode(image).decode()
    return [
        SECRET,
        "Zorblax",
        "Featherstonehaugh",
        IMAGE_MARK,
        b64[:40],
        b64[len(b64) // 2 : len(b64) // 2 + 40],
        repr(image[:24])[2:-1],
    ]


def test_logs_never_contain_request_text_or_image(
    tiny_bundle_dir: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _marked_png()
    image_b64 = base64.b64encode(image).decode()
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], max_text_chars=200, log_level="debug"
    )
    caplog.set_level(logging.DEBUG)  # every logger, every level: the strictest case
    with started_client(settings) as client:
        ok = client.post("/predict", json={"image": image_b64, "text": SECRET})
        assert ok.status_code == 200
        files = {"image": ("scan.png", image, "image/png")}
        assert client.post("/predict", files=files, data={"text": SECRET}).status_code == 200
        batch = {"items": [{"image": image_b64, "text": SECRET}, {"image": "", "text": SECRET}]}
        assert client.post("/predict/batch", json=batch).status_code == 200
        too_long = {"image": image_b64, "text": SECRET * 10}
        assert client.post("/predict", json=too_long).status_code == 422
        broken = {"image": image_b64[:-7] + "!!!", "text": SECRET}
        assert client.post("/predict", json=broken).status_code == 422
        corrupt = {"image": base64.b64encode(image[:300]).decode(), "text": SECRET}
        assert client.post("/predict", json=corrupt).status_code == 422
        unknown = {"image": image_b64, "text": SECRET, "extra": SECRET}
        assert client.post("/predict", json=unknown).status_code == 422
        bad_json = ('{"image": "' + image_b64 + '", "text": "' + SECRET).encode()
        headers = {"content-type": "application/json"}
        assert client.post("/predict", content=bad_json, headers=headers).status_code == 400
        named = {"image": image_b64, "text": SECRET, "model": "medpix", "role": "student"}
        assert client.post("/predict", json=named).status_code == 200
    ours = [r for r in caplog.records if r.name.startswith(("fusionserve", "uvicorn", "app"))]
    access = [r for r in ours if r.name == "fusionserve.access"]
    assert len(access) == 9  # one line per request, /metrics and probes not among them
    rendered = [JsonFormatter().format(r) for r in caplog.records]
    rendered += [TextFormatter().format(r) for r in caplog.records]
    rendered += [repr(r.args) for r in caplog.records]
    stderr = capsys.readouterr().err
    assert '"logger":"fusionserve.access"' in stderr  # our handler really wrote lines
    haystack = "\n".join(rendered) + stderr
    for needle in _needles(image):
        assert needle not in haystack, f"request content leaked into logs: {needle[:20]}..."


def test_access_line_fields(tiny_bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"])
    image = base64.b64encode(MEDPIX_IMAGE.read_bytes()).decode()
    with started_client(settings) as client:
        capsys.readouterr()
        response = client.post(
            "/predict", json={"image": image, "text": "CT"}, headers={"X-Request-ID": "trace-42"}
        )
        client.get("/health/ready")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("event") == "access"]
    assert len(access) == 1  # the probe is DEBUG, not an INFO access line
    line = access[0]
    body = response.json()
    assert line["request_id"] == "trace-42"
    assert line["logger"] == "fusionserve.access" and line["level"] == "info"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/predict", 200)
    assert line["model"] == "medpix-student"
    assert line["timing_ms"] == body["timing_ms"]
    assert line["batch_size"] >= 1
    assert line["duration_ms"] >= body["timing_ms"]["total"]
    assert line["bytes_out"] == len(response.content)


def test_text_log_format(tiny_bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], log_format="text")
    with started_client(settings) as client:
        capsys.readouterr()
        client.post("/predict", json={"image": "", "text": "t"}, headers={"X-Request-ID": "r-9"})
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "fusionserve.access" in x)
    assert not line.startswith("{")
    assert "[r-9] POST /predict 422" in line
    assert "error_code=empty_image" in line and "model=medpix-student" in line
