"""Manifest schema round trip and checksum verification."""

from __future__ import annotations

from pathlib import Path

from app.contract.manifest import (
    Manifest,
    Preprocessing,
    TaskSpec,
    checksum_mismatches,
    sha256_file,
)
from app.contract.tasks import TASK_SETS


def _manifest(files: dict[str, str]) -> Manifest:
    spec = TASK_SETS["wound"]
    return Manifest(
        name="wound-student",
        task_set="wound",
        role="student",
        fusion="cross_attention",
        backbones={"vision": "vit-custom", "text": "bert-custom"},
        preprocessing=Preprocessing(max_text_length=64),
        tasks=[TaskSpec(name=n, labels=list(lbl), output=f"probs_{n}") for n, lbl in spec.tasks],
        files=files,
        future_field={"kept": True},  # type: ignore[call-arg]
    )


def test_round_trip_keeps_unknown_fields(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"graph")
    manifest = _manifest({"model.onnx": sha256_file(tmp_path / "model.onnx")})
    manifest.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded == manifest
    assert loaded.model_dump()["future_field"] == {"kept": True}
    assert loaded.version == manifest.files["model.onnx"][:12]
    assert loaded.task("severity").labels == ["Mild", "Moderate", "Severe"]


def test_checksum_mismatch_and_missing_file_reported(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"graph")
    manifest = _manifest(
        {"model.onnx": sha256_file(tmp_path / "model.onnx"), "tokenizer.json": "0" * 64}
    )
    assert checksum_mismatches(tmp_path, manifest) == ["tokenizer.json: missing"]
    (tmp_path / "model.onnx").write_bytes(b"graph!")
    problems = checksum_mismatches(tmp_path, manifest)
    assert problems[0].startswith("model.onnx: sha256")
