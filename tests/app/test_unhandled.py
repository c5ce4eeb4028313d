"""An unexpected error is one log record (with its trace and the request id) and a bare 500
`internal_error`, on a real server: uvicorn logged every one a second time before."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.app.helpers import MEDPIX_IMAGE, b64, tiny_settings
from tests.app.live_server import live_server


def test_an_unhandled_error_is_logged_once(
    tiny_bundle_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(tiny_settings(tiny_bundle_dir, models=["medpix-student"]))

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("internal detail")

    with live_server(app) as base:
        app.state.service.predict = explode
        with caplog.at_level(logging.INFO):
            response = httpx.post(
                f"{base}/predict",
                json={"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x"},
                headers={"X-Request-ID": "boom-1"},
            )
            healthy = httpx.get(f"{base}/health/live")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert healthy.status_code == 200
    traced = [r for r in caplog.records if r.exc_info]
    assert [(r.name, getattr(r, "request_id", None)) for r in traced] == [
        ("fusionserve.errors", "boom-1")
    ]
    assert "KeyError" in logging.Formatter().formatException(traced[0].exc_info)  # type: ignore[arg-type]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == traced, [(r.name, r.getMessage()) for r in errors]
    assert traced[0].getMessage() == "unhandled error on POST /predict"
