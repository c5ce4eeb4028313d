"""Per-model serving settings over real HTTP: an override changes that model's batcher and
shows in /models, the other models keep the defaults, a bad file fails only its bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64, started_client, tiny_settings


def _copy(tiny_bundle_dir: Path, root: Path) -> Path:
    for name in ("medpix-student", "medpix-teacher", "wound-student"):
        shutil.copytree(tiny_bundle_dir / name, root / name)
    return root


def test_overrides_change_one_model_and_show_in_models(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(tiny_bundle_dir, tmp_path)
    (root / "medpix-student" / "serving.json").write_text(
        '{"max_batch_size": 8, "max_delay_ms": 5, "precision": "int8", "concurrent_runs": 2}'
    )
    monkeypatch.setenv("FUSIONSERVE_MODEL__MEDPIX_STUDENT__MAX_BATCH_SIZE", "4")
    monkeypatch.setenv("FUSIONSERVE_MODEL__WOUND_STUDENT__QUEUE_SIZE", "7")
    monkeypatch.setenv("FUSIONSERVE_MODEL__WOUND_STUDENT__PRECISION", "int8")
    with started_client(tiny_settings(root)) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        student, teacher, wound = (
            models[n] for n in ("medpix-student", "medpix-teacher", "wound-student")
        )
        assert student["batching"] == {
            "max_batch_size": 4, "max_delay_ms": 5.0, "queue_size": 256, "queue_depth": 0,
            "concurrent_runs": 2,
        }  # fmt: skip
        assert student["settings"]["max_batch_size"] == 4  # env beats serving.json's 8
        assert student["settings"]["precision"] == "int8"
        assert student["precision"] == "fp32"  # the bundle ships no int8 graph: fp32 serves
        assert (
            teacher["batching"]["max_batch_size"] == 4 and teacher["settings"]["queue_size"] == 256
        )
        assert teacher["settings"]["max_delay_ms"] == 2.0 and teacher["precision"] == "fp32"
        assert wound["batching"]["queue_size"] == 7 and wound["batching"]["max_batch_size"] == 4
        assert wound["batching"]["concurrent_runs"] == 1  # auto, with threads set (tiny_settings)
        assert wound["precision"] == "int8" and wound["model_file"] == "model.int8.onnx"
        assert client.get("/models/medpix-student").json()["settings"] == student["settings"]
        assert set(student["settings"]) == {
            "max_batch_size", "max_delay_ms", "queue_size", "precision", "providers",
            "intra_op_threads", "inter_op_threads", "concurrent_runs", "graph_optimization",
            "io_binding",
        }  # fmt: skip
        payload = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT}
        assert client.post("/predict", json=payload).status_code == 200


def test_bad_settings_file_fails_only_its_bundle(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_bundle_dir, tmp_path)
    (root / "medpix-teacher" / "serving.json").write_text('{"max_batch_size": "lots"}')
    with started_client(tiny_settings(root)) as client:
        info = client.get("/models/medpix-teacher").json()
        assert info["state"] == "failed" and info["settings"] is None
        path = root / "medpix-teacher" / "serving.json"
        assert info["reason"].startswith(f"serving settings: {path}: max_batch_size: Input should")
        ready = client.get("/health/ready").json()
        assert ready["models"]["medpix-student"]["ready"] is True
        assert ready["models"]["wound-student"]["ready"] is True
