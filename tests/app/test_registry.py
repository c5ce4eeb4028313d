"""Bundle loading: sha256 verification, broken bundles isolated with a clear reason, lookup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.contract.manifest import MODEL_FILE, sha256_file
from app.contract.session import concurrent_runs
from app.errors import InvalidRequest, ModelNotReady, UnknownModel, UnknownRole
from tests.app.helpers import MEDPIX_IMAGE, b64, started_client, tiny_settings


def _copy(src: Path, dst_root: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(src / name, dst_root / name)
    return dst_root


def _rewrite_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_checksum_mismatch_isolates_one_model(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_bundle_dir, tmp_path, "medpix-student", "wound-student")
    with (root / "medpix-student" / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    with started_client(tiny_settings(root)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        detail = ready.json()
        assert detail["models"]["wound-student"]["ready"] is True
        medpix = detail["models"]["medpix-student"]
        assert medpix["state"] == "failed" and "checksum mismatch" in medpix["reason"]
        assert "tokenizer.json" in medpix["reason"]
        assert any("medpix-student" in r for r in detail["reasons"])
        info = client.get("/models/medpix-student").json()
        assert info["ready"] is False and "checksum mismatch" in info["reason"]
        payload = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x"}
        refused = client.post("/predict", json=payload)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
        served = client.post("/predict?model=wound", json=payload)
        assert served.status_code == 200


def test_corrupt_graph_with_matching_checksum_fails_to_load(
    tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    bundle = _copy(tiny_bundle_dir, tmp_path, "medpix-student") / "medpix-student"
    (bundle / MODEL_FILE).write_bytes(b"this is not an onnx graph")
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    files[MODEL_FILE] = sha256_file(bundle / MODEL_FILE)
    _rewrite_manifest(bundle, files=files)
    with started_client(tiny_settings(tmp_path)) as client:
        info = client.get("/models/medpix-student").json()
        assert info["state"] == "failed" and info["reason"].startswith("load failed")


def test_self_test_mismatch_keeps_model_not_ready(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle_dir, tmp_path, "medpix-student") / "medpix-student"
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["self_test"]["expected"]["probs_modality"] = [0.5, 0.5]
    _rewrite_manifest(bundle, self_test=manifest["self_test"])
    with started_client(tiny_settings(tmp_path)) as client:
        info = client.get("/models/medpix-student").json()
        assert (
            info["state"] == "failed" and "self-test mismatch on probs_modality" in info["reason"]
        )


def test_unreadable_manifest(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    with started_client(tiny_settings(tmp_path)) as client:
        info = client.get("/models/broken").json()
        assert info["state"] == "failed" and "manifest unreadable" in info["reason"]


def test_models_setting_selects_bundles_and_reports_missing(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["wound-student", "ghost"])
    with started_client(settings) as client:
        names = [m["name"] for m in client.get("/models").json()["models"]]
        assert names == ["wound-student", "ghost"]
        ready = client.get("/health/ready").json()
        assert ready["models"]["ghost"]["reason"].startswith("bundle 'ghost' not found")


def test_empty_bundle_dir_is_not_ready(tmp_path: Path) -> None:
    with started_client(tiny_settings(tmp_path / "nothing-here")) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "no bundles found" in ready.json()["reasons"][0]
        assert client.get("/health/live").status_code == 200


def test_lookup_rules(tiny_bundle_dir: Path) -> None:
    with started_client(tiny_settings(tiny_bundle_dir)) as client:
        registry = client.app.state.service.registry  # type: ignore[attr-defined]
        assert registry.resolve(None).name == "medpix-student"
        assert registry.resolve("medpix", "teacher").name == "medpix-teacher"
        assert registry.resolve("wound").name == "wound-student"
        assert registry.resolve("medpix-teacher", "teacher").name == "medpix-teacher"
        with pytest.raises(UnknownModel):
            registry.resolve("wound", "teacher")
        with pytest.raises(UnknownModel):
            registry.resolve("medpix-intern")
        with pytest.raises(UnknownRole):
            registry.resolve("medpix", "professor")
        with pytest.raises(InvalidRequest):
            registry.resolve("medpix-student", "teacher")
        registry.lifecycle.drain()  # the SIGTERM hook's transition; it never goes back
        assert registry.readiness() == (False, ["server is draining"])


def test_not_ready_while_loading(tiny_bundle_dir: Path) -> None:
    from app.registry import ModelRegistry

    registry = ModelRegistry(tiny_settings(tiny_bundle_dir))
    ok, reasons = registry.readiness()
    assert not ok and all(r.endswith(": loading") for r in reasons)
    with pytest.raises(ModelNotReady):
        registry.resolve("medpix")


def test_concurrent_runs_auto_and_per_model(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auto threads: two runs per model on a CPU with 2+ cores (shown by /models); a model's
    own variable overrides it."""
    monkeypatch.setenv("FUSIONSERVE_MODEL__WOUND_STUDENT__CONCURRENT_RUNS", "3")
    settings = tiny_settings(tiny_bundle_dir, intra_op_threads=0)
    with started_client(settings) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        auto = concurrent_runs(0, "cpu", 0)
        assert models["medpix-student"]["batching"]["concurrent_runs"] == auto
        assert models["wound-student"]["batching"]["concurrent_runs"] == 3
        registry = client.app.state.service.registry  # type: ignore[attr-defined]
        assert registry.models["medpix-student"].active.batcher.concurrent_runs == auto
        payload = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "CT"}
        answer = client.post("/predict", json=payload)
        assert answer.status_code == 200, answer.text
