"""GET /models and /models/{name}: manifest summary, readiness, provider, precision, labels."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.contract.tasks import TASK_SETS
from tests.app.helpers import assert_error


def test_list_models(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert set(models) == {"medpix-student", "medpix-teacher", "wound-student"}
    for info in models.values():
        assert info["ready"] is True and info["state"] == "ready" and info["reason"] is None
        assert info["provider"] == "CPUExecutionProvider" and info["precision"] == "fp32"
        assert len(info["version"]) == 12
        spec = TASK_SETS[info["task_set"]]
        assert [t["name"] for t in info["tasks"]] == list(spec.task_names)
        for task in info["tasks"]:
            assert tuple(task["labels"]) == spec.labels(task["name"])
        assert info["batching"]["max_batch_size"] == 4  # auto on a CPU
        assert info["settings"]["max_batch_size"] == 0
    assert models["medpix-student"]["aliases"] == ["medpix"]
    assert models["medpix-teacher"]["aliases"] == ["medpix"]  # with role=teacher
    assert models["medpix-student"]["modality_weights"] is True
    assert models["medpix-teacher"]["modality_weights"] is False


def test_model_by_name_and_by_task_set(client: TestClient) -> None:
    assert client.get("/models/medpix-teacher").json()["role"] == "teacher"
    assert client.get("/models/wound").json()["name"] == "wound-student"


def test_unknown_model(client: TestClient) -> None:
    assert_error(client.get("/models/nope"), 404, "unknown_model")
