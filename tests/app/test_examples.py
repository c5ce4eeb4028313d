"""The committed example request bodies are accepted by the service as documented."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.app.helpers import REPO_ROOT, assert_prediction

EXAMPLES = REPO_ROOT / "examples"


@pytest.mark.parametrize(
    "name,tasks",
    [
        ("predict-medpix.json", ("modality", "location")),
        ("predict-wound.json", ("type", "severity")),
    ],
)
def test_example_bodies(client: TestClient, name: str, tasks: tuple[str, str]) -> None:
    body = json.loads((EXAMPLES / name).read_text())
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert_prediction(response.json(), tasks)


def test_example_batch(client: TestClient) -> None:
    body = json.loads((EXAMPLES / "predict-batch.json").read_text())
    results = client.post("/predict/batch", json=body).json()["results"]
    assert [r["status"] for r in results] == [200, 200]


def test_example_images_are_small() -> None:
    for path in EXAMPLES.iterdir():
        assert path.stat().st_size < 200 * 1024, path


def test_openapi_documents_both_content_types(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert content["application/json"]["examples"] and content["multipart/form-data"]["example"]
    assert content["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    components = schema["components"]["schemas"]
    assert {"PredictRequest", "BatchRequest", "PredictResponse", "ErrorResponse"} <= set(components)
    example = content["application/json"]["examples"]["medpix"]["value"]
    assert client.post("/predict", json=example).status_code == 200  # the docs' example works
