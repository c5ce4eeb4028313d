"""N real requests move every request, item and prediction metric by exactly N."""

from __future__ import annotations

from fastapi.testclient import TestClient
from PIL import Image

from app.observability.metrics import LATENCY_BUCKETS, PHASES
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT, b64
from tests.app.observability.scrape import parse, scrape, total

N = 5
MEDPIX = "medpix-student"


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def test_n_predictions_move_counters_and_histograms_by_n(observed: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    with Image.open(MEDPIX_IMAGE) as img:
        pixels = img.width * img.height
    before = parse(scrape(observed))
    bodies = []
    for i in range(N):
        response = observed.post("/predict", json={"image": image, "text": MEDPIX_TEXT[: 20 + i]})
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    after = parse(scrape(observed))

    def moved(name: str, **labels: str) -> float:
        return _delta(before, after, name, **labels)

    route = {"route": "/predict", "model": MEDPIX}
    assert moved("fusionserve_http_requests_total", status="200", method="POST", **route) == N
    assert moved("fusionserve_http_request_duration_seconds_count", **route) == N
    assert moved("fusionserve_http_request_duration_seconds_bucket", le="+Inf", **route) == N
    assert moved("fusionserve_http_request_duration_seconds_sum", **route) > 0
    for phase in PHASES:
        assert moved("fusionserve_item_phase_seconds_count", model=MEDPIX, phase=phase) == N
    assert moved("fusionserve_batch_size_sum", model=MEDPIX) == N  # items, however batched
    assert 1 <= moved("fusionserve_batch_size_count", model=MEDPIX) <= N
    assert moved("fusionserve_input_image_pixels_count", model=MEDPIX) == N
    assert moved("fusionserve_input_image_pixels_sum", model=MEDPIX) == N * pixels
    assert moved("fusionserve_input_text_tokens_count", model=MEDPIX) == N
    for task in ("modality", "location"):
        assert moved("fusionserve_predictions_total", model=MEDPIX, task=task) == N
        assert moved("fusionserve_prediction_confidence_count", model=MEDPIX, task=task) == N
        labels = [b["predictions"][task]["label"] for b in bodies]
        for label in set(labels):
            got = moved("fusionserve_predictions_total", model=MEDPIX, task=task, label=label)
            assert got == labels.count(label)
        lows = sum(b["predictions"][task]["low_confidence"] for b in bodies)
        assert (
            moved("fusionserve_low_confidence_predictions_total", model=MEDPIX, task=task) == lows
        )
        confidence_sum = sum(b["predictions"][task]["probability"] for b in bodies)
        got_sum = moved("fusionserve_prediction_confidence_sum", model=MEDPIX, task=task)
        assert abs(got_sum - confidence_sum) < 1e-4
    assert moved("fusionserve_rejections_total") == 0
    assert total(after, "fusionserve_http_requests_in_flight") == 0


def test_latency_buckets_resolve_1ms_to_10s(observed: TestClient) -> None:
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] == 10.0
    samples = parse(scrape(observed))
    les = {
        dict(labels)["le"]
        for (name, labels) in samples
        if name == "fusionserve_item_phase_seconds_bucket"
    }
    assert {"0.001", "10.0", "+Inf"} <= les


def test_batch_items_count_per_item_and_request_once(observed: TestClient) -> None:
    items = [
        {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT},
        {"image": b64(WOUND_IMAGE.read_bytes()), "text": WOUND_TEXT, "model": "wound"},
        {"image": b64(WOUND_IMAGE.read_bytes()), "text": WOUND_TEXT, "model": "wound"},
    ]
    before = parse(scrape(observed))
    response = observed.post("/predict/batch", json={"items": items})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == [200, 200, 200]
    after = parse(scrape(observed))
    requests = _delta(before, after, "fusionserve_http_requests_total", route="/predict/batch")
    assert requests == 1
    assert _delta(before, after, "fusionserve_http_requests_total", model="multiple") == 1
    assert (
        _delta(before, after, "fusionserve_predictions_total", model=MEDPIX, task="modality") == 1
    )
    wound_items = _delta(
        before, after, "fusionserve_item_phase_seconds_count", model="wound-student", phase="queue"
    )
    assert wound_items == 2
    assert _delta(before, after, "fusionserve_batch_size_sum", model="wound-student") == 2


def test_model_gauges_after_loading(observed: TestClient) -> None:
    samples = parse(scrape(observed))
    for model in (MEDPIX, "wound-student"):
        assert total(samples, "fusionserve_model_ready", model=model) == 1
        assert total(samples, "fusionserve_model_load_seconds", model=model) > 0
        assert total(samples, "fusionserve_model_warmup_seconds", model=model) > 0
        assert total(samples, "fusionserve_queue_depth", model=model) == 0
        info = [
            dict(labels)
            for (name, labels) in samples
            if name == "fusionserve_model_info" and dict(labels)["model"] == model
        ]
        assert len(info) == 1
        assert info[0]["provider"] == "CPUExecutionProvider"
        assert info[0]["precision"] == "fp32"
        models = observed.get(f"/models/{model}").json()
        assert info[0]["version"] == models["version"]
