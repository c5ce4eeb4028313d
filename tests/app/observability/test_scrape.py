"""GET /metrics after real traffic: valid exposition (promtool), probes and scrapes not counted."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    WOUND_IMAGE,
    WOUND_TEXT,
    b64,
    started_client,
    tiny_settings,
)
from tests.app.observability.promtool import promtool
from tests.app.observability.scrape import parse, scrape, series, total


def _traffic(client: TestClient) -> None:
    medpix, wound = b64(MEDPIX_IMAGE.read_bytes()), b64(WOUND_IMAGE.read_bytes())
    assert client.post("/predict", json={"image": medpix, "text": MEDPIX_TEXT}).status_code == 200
    files = {"image": ("w.jpg", WOUND_IMAGE.read_bytes(), "image/jpeg")}
    data = {"text": WOUND_TEXT, "model": "wound"}
    assert client.post("/predict", files=files, data=data).status_code == 200
    items = [{"image": medpix, "text": "t"}, {"image": wound, "text": "t", "model": "wound"}]
    assert client.post("/predict/batch", json={"items": items}).status_code == 200
    assert client.post("/predict", json={"image": "", "text": "t"}).status_code == 422
    assert client.post("/predict", content=b"0" * (300 * 1024)).status_code == 413
    assert client.get("/models").status_code == 200


def test_promtool_accepts_a_scrape_after_real_requests(observed: TestClient) -> None:
    _traffic(observed)
    response = observed.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    samples = parse(text)
    assert total(samples, "fusionserve_http_requests_total", route="/predict") >= 3
    assert total(samples, "fusionserve_predictions_total", model="wound-student") >= 2 * 2
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_metrics_and_health_are_not_traffic(observed: TestClient) -> None:
    before = parse(scrape(observed))
    for _ in range(3):
        for path in ("/metrics", "/health/live", "/health/ready"):
            assert observed.get(path).status_code == 200
    after = parse(scrape(observed))
    for name in (
        "fusionserve_http_requests_total",
        "fusionserve_http_request_duration_seconds_count",
    ):
        assert total(after, name) == total(before, name)
    routes = {s["route"] for s in series(after, "fusionserve_http_requests_total")}
    assert not any(r == "/metrics" or r.startswith("/health") for r in routes)
    assert total(after, "fusionserve_http_requests_in_flight") == 0


def test_metrics_can_be_switched_off(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], metrics_enabled=False)
    with started_client(settings) as client:
        assert client.get("/metrics").status_code == 404
        image = b64(MEDPIX_IMAGE.read_bytes())
        response = client.post("/predict", json={"image": image, "text": "t"})
        assert response.status_code == 200
        assert "server-timing" in response.headers and "x-request-id" in response.headers
