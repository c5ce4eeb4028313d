"""POST /predict/batch: per-item success and failure, limits on the whole request."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    WOUND_IMAGE,
    assert_error,
    assert_prediction,
    b64,
)


def test_each_item_succeeds_or_fails_on_its_own(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    items = [
        {"image": image, "text": MEDPIX_TEXT},
        {"image": "%%%", "text": "x"},
        {"image": b64(WOUND_IMAGE.read_bytes()), "text": "x", "model": "wound"},
        {"image": image},
    ]
    response = client.post("/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == [200, 422, 200, 422]
    assert_prediction(results[0]["result"], ("modality", "location"))
    assert results[0]["result"]["model"]["name"] == "medpix-student"
    assert results[1]["error"]["code"] == "invalid_base64" and "result" not in results[1]
    assert results[2]["result"]["model"]["name"] == "wound-student"
    assert results[3]["error"]["code"] == "missing_field"


def test_batch_matches_single_predictions(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    texts = ["CT chest", "MR brain", MEDPIX_TEXT]
    batch = client.post(
        "/predict/batch",
        json={"model": "medpix", "items": [{"image": image, "text": t} for t in texts]},
    ).json()["results"]
    for text, result in zip(texts, batch, strict=True):
        single = client.post("/predict", json={"image": image, "text": text}).json()
        for task, pred in single["predictions"].items():
            got = result["result"]["predictions"][task]
            assert got["label"] == pred["label"]
            assert abs(got["probability"] - pred["probability"]) < 1e-5


def test_batch_level_defaults_and_item_overrides(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    body = {
        "role": "teacher",
        "items": [{"image": image, "text": "x"}, {"image": image, "text": "x", "role": "student"}],
    }
    results = client.post("/predict/batch?model=medpix", json=body).json()["results"]
    assert [r["result"]["model"]["name"] for r in results] == ["medpix-teacher", "medpix-student"]


def test_whole_request_errors(client: TestClient) -> None:
    item = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x"}
    assert_error(client.post("/predict/batch", json={"items": [item] * 5}), 422, "too_many_items")
    assert_error(client.post("/predict/batch", json={"items": []}), 422, "invalid_request")
    assert_error(client.post("/predict/batch", json=[item]), 422, "invalid_request")
    assert_error(
        client.post("/predict/batch", json={"items": [item], "x": 1}), 422, "invalid_request"
    )
    assert_error(
        client.post("/predict/batch", json={"items": [item], "model": 3}), 422, "invalid_request"
    )
    files = {"image": ("a.png", MEDPIX_IMAGE.read_bytes(), "image/png")}
    assert_error(client.post("/predict/batch", files=files), 415, "unsupported_media_type")
    bad = client.post("/predict/batch", content=b"[", headers={"content-type": "application/json"})
    assert_error(bad, 400, "invalid_json")
