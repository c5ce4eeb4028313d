"""Every rejection reason is counted exactly once, with the model it was meant for."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.observability import record_rejection
from app.settings import Settings
from tests.app.helpers import MEDPIX_IMAGE, b64, encode, png_header_only, tiny_settings
from tests.app.observability.scrape import Samples, parse, scrape, total
from tests.app.test_batcher import GatedRunner

REJ = "fusionserve_rejections_total"
MEDPIX = "medpix-student"
IMAGE = b64(MEDPIX_IMAGE.read_bytes())


def _rejections_moved(before: Samples, after: Samples) -> dict[tuple[str, str], float]:
    keys = {(dict(lab)["model"], dict(lab)["reason"]) for (n, lab) in after if n == REJ}
    moved = {}
    for model, reason in keys:
        delta = total(after, REJ, model=model, reason=reason) - total(
            before, REJ, model=model, reason=reason
        )
        if delta:
            moved[(model, reason)] = delta
    return moved


@contextmanager
def _serving(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(settings)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while not app.state.service.registry.loading_done:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield app, client


def _tiny_png() -> bytes:
    return encode(Image.new("RGB", (2, 2), (10, 20, 30)))


CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("empty image", {"json": {"image": "", "text": "t"}}, 422, MEDPIX, "invalid_input"),
    (
        "tiny image",
        {"json": {"image": b64(_tiny_png()), "text": "t"}},
        422,
        MEDPIX,
        "invalid_input",
    ),
    (
        "image bomb header",
        {"json": {"image": b64(png_header_only(20000, 20000)), "text": "t"}},
        413,
        MEDPIX,
        "too_large",
    ),
    ("text too long", {"json": {"image": IMAGE, "text": "x" * 201}}, 422, MEDPIX, "too_large"),
    (
        "unknown model",
        {"json": {"image": IMAGE, "text": "t", "model": "nope"}},
        404,
        "",
        "invalid_input",
    ),
    (
        "broken json",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        "",
        "invalid_input",
    ),
    (
        "body too large",
        {"content": b"0" * (300 * 1024), "headers": {"content-type": "application/json"}},
        413,
        "",
        "too_large",
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "model", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_predict_rejections_counted_once(
    observed: TestClient, case: str, kwargs: dict[str, Any], status: int, model: str, reason: str
) -> None:
    before = parse(scrape(observed))
    response = observed.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    after = parse(scrape(observed))
    assert _rejections_moved(before, after) == {(model, reason): 1}
    requests = total(after, "fusionserve_http_requests_total", route="/predict", status=str(status))
    assert (
        requests
        - total(before, "fusionserve_http_requests_total", route="/predict", status=str(status))
        == 1
    )


def test_batch_level_and_item_level_rejections(observed: TestClient) -> None:
    before = parse(scrape(observed))
    too_many = {"items": [{"image": IMAGE, "text": "t"}] * 5}
    assert observed.post("/predict/batch", json=too_many).status_code == 422
    items = {"items": [{"image": IMAGE, "text": "t"}, {"image": "", "text": "t"}]}
    response = observed.post("/predict/batch", json=items)
    assert [r["status"] for r in response.json()["results"]] == [200, 422]
    after = parse(scrape(observed))
    assert _rejections_moved(before, after) == {("", "too_large"): 1, (MEDPIX, "invalid_input"): 1}


def test_wrong_urls_and_reads_are_not_rejections(observed: TestClient) -> None:
    before = parse(scrape(observed))
    assert observed.get("/no-such-route").status_code == 404
    assert observed.get("/models/nope").status_code == 404
    assert observed.get("/predict").status_code == 405
    after = parse(scrape(observed))
    assert _rejections_moved(before, after) == {}
    moved = total(after, "fusionserve_http_requests_total", route="unmatched") - total(
        before, "fusionserve_http_requests_total", route="unmatched"
    )
    assert moved == 1
    assert total(after, "fusionserve_http_requests_total", route="unmatched", status="404") >= 1


def test_not_ready_model(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=[MEDPIX, "ghost"])
    with _serving(settings) as (_, client):
        response = client.post("/predict", json={"image": IMAGE, "text": "t", "model": "ghost"})
        assert response.status_code == 503
        samples = parse(scrape(client))
    assert total(samples, REJ, model="ghost", reason="not_ready") == 1
    assert total(samples, REJ) == 1
    assert total(samples, "fusionserve_model_ready", model="ghost") == 0
    assert total(samples, "fusionserve_model_ready", model=MEDPIX) == 1


def test_timeout(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=[MEDPIX], request_timeout_s=1e-6)
    with _serving(settings) as (_, client):
        for _ in range(2):
            response = client.post("/predict", json={"image": IMAGE, "text": "t"})
            assert response.json()["error"]["code"] == "deadline_exceeded"
        samples = parse(scrape(client))
    assert total(samples, REJ, model=MEDPIX, reason="timeout") == 2
    assert total(samples, REJ) == 2


def test_queue_full(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=[MEDPIX], queue_size=2, max_delay_ms=0)

    async def scenario() -> Samples:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            registry = app.state.service.registry
            while not registry.loading_done:
                await asyncio.sleep(0.01)
            served = registry.models[MEDPIX]
            runner = GatedRunner(served.active.bundle.onnx)
            served.active.batcher._run_batch = runner
            runner.gate.clear()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                def post() -> Any:
                    return client.post("/predict", json={"image": IMAGE, "text": "t"})

                first = asyncio.create_task(post())
                while not runner.started.is_set():
                    await asyncio.sleep(0.002)
                queued = [asyncio.create_task(post()) for _ in range(2)]
                while served.active.batcher.depth < 2:
                    await asyncio.sleep(0.002)
                in_flight = parse((await client.get("/metrics")).text)
                assert total(in_flight, "fusionserve_http_requests_in_flight") == 3
                assert total(in_flight, "fusionserve_queue_depth", model=MEDPIX) == 2
                assert (await post()).status_code == 429
                runner.gate.set()
                assert [r.status_code for r in await asyncio.gather(first, *queued)] == [200] * 3
                return parse((await client.get("/metrics")).text)

    samples = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert total(samples, REJ, model=MEDPIX, reason="queue_full") == 1
    assert total(samples, REJ) == 1
    assert total(samples, "fusionserve_http_requests_in_flight") == 0
    assert total(samples, "fusionserve_queue_depth", model=MEDPIX) == 0


def test_unauthorized_from_the_auth_layer(tiny_bundle_dir: Path) -> None:
    app = create_app(tiny_settings(tiny_bundle_dir, models=[MEDPIX]))
    envelope = {"error": {"code": "unauthorized", "message": "missing API key"}}

    @app.post("/guarded")
    async def guarded(request: Request) -> JSONResponse:  # counts itself, then answers 401
        record_rejection(request, "unauthorized")
        return JSONResponse(envelope, status_code=401)

    @app.get("/guarded-read")
    async def guarded_read() -> JSONResponse:  # relies on the response's error code
        return JSONResponse(envelope, status_code=401)

    with TestClient(app) as client:
        assert client.post("/guarded").status_code == 401
        assert client.get("/guarded-read").status_code == 401
        samples = parse(scrape(client))
        with pytest.raises(ValueError, match="unknown rejection reason"):
            record_rejection(Request({"type": "http", "app": app}), "bored")
    assert total(samples, REJ, model="", reason="unauthorized") == 2
    assert total(samples, REJ) == 2


def test_tiny_png_is_really_too_small() -> None:
    with Image.open(io.BytesIO(_tiny_png())) as img:
        assert img.size == (2, 2)
