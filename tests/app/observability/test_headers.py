"""X-Request-ID (accepted when safe, else generated; always echoed) and Server-Timing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64

IMAGE = b64(MEDPIX_IMAGE.read_bytes())
GENERATED = re.compile(r"[0-9a-f]{32}")


def _timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def test_server_timing_matches_the_body_on_success(observed: TestClient) -> None:
    response = observed.post("/predict", json={"image": IMAGE, "text": MEDPIX_TEXT})
    assert response.status_code == 200
    timing = _timing(response.headers["server-timing"])
    assert list(timing) == ["queue", "preprocess", "inference", "total"]
    assert timing == pytest.approx(response.json()["timing_ms"], abs=1e-3)
    assert timing["total"] >= timing["preprocess"]


def test_server_timing_on_errors_batches_and_multipart(observed: TestClient) -> None:
    error = observed.post("/predict", json={"image": "", "text": "t"})
    assert error.status_code == 422
    assert list(_timing(error.headers["server-timing"])) == ["total"]
    batch = observed.post("/predict/batch", json={"items": [{"image": IMAGE, "text": "t"}]})
    assert list(_timing(batch.headers["server-timing"])) == ["total"]
    files = {"image": ("x.png", MEDPIX_IMAGE.read_bytes(), "image/png")}
    multipart = observed.post("/predict", files=files, data={"text": "t"})
    assert list(_timing(multipart.headers["server-timing"])) == [
        "queue", "preprocess", "inference", "total"
    ]  # fmt: skip


def test_probes_and_scrapes_carry_no_server_timing(observed: TestClient) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        response = observed.get(path)
        assert response.status_code == 200
        assert "server-timing" not in response.headers
        assert GENERATED.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize("given", ["abc-123", "0af7651916cd43dd8448eb211c80319c", "a.b:c_d@e+f="])
def test_safe_request_id_is_echoed(observed: TestClient, given: str) -> None:
    response = observed.post(
        "/predict", json={"image": IMAGE, "text": "t"}, headers={"X-Request-ID": given}
    )
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given", ["has space", "x" * 129, "new\tline", "\xe9-accent".encode("latin-1"), b"ctl\x07", ""]
)
def test_unsafe_request_id_is_replaced(observed: TestClient, given: str | bytes) -> None:
    response = observed.get("/models", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["x-request-id"])


def test_generated_ids_are_unique_and_on_every_response(observed: TestClient) -> None:
    responses = [
        observed.post("/predict", json={"image": IMAGE, "text": "t"}),
        observed.post("/predict", json={"image": "", "text": "t"}),
        observed.post("/predict", content=b"0" * (300 * 1024)),
        observed.get("/nowhere"),
    ]
    assert [r.status_code for r in responses] == [200, 422, 413, 404]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(GENERATED.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
