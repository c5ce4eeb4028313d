"""The OIP model-repository routes: index, load, unload; behind the API key; exact names only."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64, started_client, tiny_settings

KEY = "repository-test-key"
AUTH = {"X-API-Key": KEY}
BODY = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT}


def test_index_load_unload_behind_the_key(tiny_bundle_dir: Path) -> None:
    models = ["medpix-student", "wound-student"]
    settings = tiny_settings(tiny_bundle_dir, models=models, api_key=KEY)
    with started_client(settings) as client:
        assert client.post("/v2/repository/index").status_code == 401
        assert client.post("/v2/repository/models/medpix-student/unload").status_code == 401

        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert {e["name"]: e["state"] for e in index} == {
            "medpix-student": "READY",
            "wound-student": "READY",
        }
        version = index[0]["version"]
        assert len(version) == 12

        gone = client.post("/v2/repository/models/medpix-student/unload", headers=AUTH)
        assert gone.status_code == 200 and gone.json()["state"] == "UNAVAILABLE"
        refused = client.post("/predict", json=BODY, headers=AUTH)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
        assert client.get("/health/ready").status_code == 200  # an unload is not a failure
        ready = client.post("/v2/repository/index", json={"ready": True}, headers=AUTH).json()
        assert [e["name"] for e in ready] == ["wound-student"]

        back = client.post("/v2/repository/models/medpix-student/load", headers=AUTH)
        assert back.status_code == 200 and back.json() == {
            "name": "medpix-student",
            "version": version,
            "state": "READY",
            "reason": "",
        }
        answer = client.post("/predict", json=BODY, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == version

        unknown = client.post("/v2/repository/models/medpix/load", headers=AUTH)  # no aliases
        assert unknown.status_code == 404 and unknown.headers["x-error-code"] == "unknown_model"
