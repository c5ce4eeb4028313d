"""/v2 health, server and model metadata, readiness: against real tiny bundles in-process."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from app.contract.manifest import Manifest
from tests.app.helpers import started_client, tiny_settings
from tests.app.oip.v2_requests import assert_oip_error


def _version(bundle_dir: Path, name: str) -> str:
    return Manifest.load(bundle_dir / name).version


def test_server_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2").json() == {
        "name": "fusionserve",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "model_repository"],
    }
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


def test_model_metadata_names_tensors_labels_and_version(
    client: TestClient, tiny_bundle_dir: Path
) -> None:
    body = client.get("/v2/models/medpix-student").json()
    version = _version(tiny_bundle_dir, "medpix-student")
    manifest = Manifest.load(tiny_bundle_dir / "medpix-student")
    assert body["name"] == "medpix-student" and body["versions"] == [version]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [
        {"name": "image", "datatype": "BYTES", "shape": [-1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
    ]
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in body["outputs"]}
    assert outputs == {
        "probs_modality": ("FP32", [-1, 2]),
        "probs_location": ("FP32", [-1, 5]),
        "label_modality": ("BYTES", [-1]),
        "label_location": ("BYTES", [-1]),
        "modality_weights": ("FP32", [-1, 2]),
    }
    params = body["parameters"]
    assert all(isinstance(v, str) for v in params.values())  # the protocol's scalar values
    assert (params["task_set"], params["role"]) == ("medpix", "student")
    assert json.loads(params["tasks"]) == ["modality", "location"]
    for task in manifest.tasks:
        assert json.loads(params[f"labels_{task.name}"]) == task.labels


def test_alias_and_version_routes(client: TestClient, tiny_bundle_dir: Path) -> None:
    assert client.get("/v2/models/medpix").json()["name"] == "medpix-student"
    version = _version(tiny_bundle_dir, "wound-student")
    versioned = client.get(f"/v2/models/wound/versions/{version}")
    assert versioned.status_code == 200 and versioned.json()["name"] == "wound-student"
    ready = client.get(f"/v2/models/wound-student/versions/{version}/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "wound-student", "ready": True}
    assert client.get("/v2/models/medpix-teacher/ready").json()["ready"] is True


def test_unknown_model_and_version_are_404(client: TestClient) -> None:
    assert_oip_error(client.get("/v2/models/nope"), 404, "unknown_model")
    assert_oip_error(client.get("/v2/models/nope/ready"), 404, "unknown_model")
    assert_oip_error(client.get("/v2/models/medpix/versions/0000/ready"), 404, "unknown_version")
    assert_oip_error(client.post("/v2/models/medpix/versions/0000/infer"), 404, "unknown_version")
    assert_oip_error(client.get("/v2/nothing-here"), 404, "not_found")
    assert_oip_error(client.delete("/v2/models/medpix"), 405, "method_not_allowed")


def test_not_ready_model_answers_503(tmp_path: Path, tiny_bundle_dir: Path) -> None:
    broken = tmp_path / "bundles"
    broken.mkdir()
    (broken / "medpix-student").symlink_to(tiny_bundle_dir / "medpix-student")
    source = tiny_bundle_dir / "wound-student"
    target = broken / "wound-student"
    target.mkdir()
    for item in source.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    (target / "tokenizer.json").write_text("{}")  # sha256 mismatch: this bundle fails
    with started_client(tiny_settings(broken)) as c:
        ready = c.get("/v2/health/ready")
        assert ready.status_code == 503 and ready.json() == {"ready": False}
        model = c.get("/v2/models/wound-student/ready")
        assert model.status_code == 503 and model.json() == {
            "name": "wound-student",
            "ready": False,
        }
        assert c.get("/v2/models/medpix-student/ready").status_code == 200
        assert c.get("/v2/models/wound-student").status_code == 200  # manifest still readable
        infer = c.post("/v2/models/wound-student/infer", json={"inputs": []})
        assert_oip_error(infer, 503, "model_not_ready")


def test_openapi_documents_v2_errors_in_the_protocol_shape(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "OipError" in schema["components"]["schemas"]
    infer = schema["paths"]["/v2/models/{name}/infer"]["post"]
    assert "application/octet-stream" in infer["requestBody"]["content"]
    for status, response in infer["responses"].items():
        if int(status) >= 400:
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/OipError"), status
    assert not any("/versions/" in p for p in schema["paths"])  # same handlers, not re-listed
