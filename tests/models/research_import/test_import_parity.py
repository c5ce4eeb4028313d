"""`fusionserve import-research` end to end: a research-layout model with seeded weights is
saved as a bare state_dict beside its research YAML, imported, and the bundle's onnxruntime
probabilities are compared with the torch model's softmax(logits / T) on real MedPix dev
images and captions (contract preprocessing, the bundle's own tokenizer) at batch 1, 7, 32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.contract.manifest import MODEL_FILE, TOKENIZER_FILE, Manifest
from app.verify_cli import verify_bundle
from fusionserve.cli import main
from models.export.dev_data import DataSource, load_dev_set
from models.fusion import FUSIONS
from models.multitask import MultiTaskModel
from models.research_import.research_config import read_research_config
from tests.models.research_import.conftest import (
    research_yaml,
    save_research_checkpoint,
    seeded_model,
)

TOLERANCE = 1e-4
LOGIT_KEYS = ("logits_modality", "logits_location")


def _import(tmp_path: Path, yaml_path: Path, role: str, *extra: str) -> tuple[Path, MultiTaskModel]:
    run = read_research_config(yaml_path, role)
    model = seeded_model(run.model_config, seed=len(role))
    checkpoint = save_research_checkpoint(model, tmp_path / f"{role}_best.pth")
    out = tmp_path / "exported" / f"research-{role}"
    args = ["import-research", "--checkpoint", str(checkpoint), "--config", str(yaml_path)]
    rc = main([*args, "--role", role, "--out", str(out), "--threads", "1", *extra])
    assert rc == 0
    return out, model


def _assert_parity(bundle: Path, model: MultiTaskModel, medpix_root: Path) -> None:
    manifest = Manifest.load(bundle)
    tokenizer_json = (bundle / TOKENIZER_FILE).read_text(encoding="utf-8")
    source = DataSource(task_set=manifest.task_set, root=medpix_root)
    dev = load_dev_set(source, tokenizer_json, manifest.preprocessing.max_text_length, limit=32)
    with torch.no_grad():
        out = model(*(torch.from_numpy(a) for a in dev.rows(32)))
    expected = [
        torch.softmax(out[key] / task.temperature, dim=-1).numpy()
        for key, task in zip(LOGIT_KEYS, manifest.tasks, strict=True)
    ]
    for key in LOGIT_KEYS:  # the seeded model is peaked and input-dependent
        raw = torch.softmax(out[key], dim=-1)
        assert raw.max(dim=1).values.mean() > 1 / raw.shape[1] + 0.15
        assert out[key].std(dim=0).max() > 0.05
    session = ort.InferenceSession(str(bundle / MODEL_FILE), providers=["CPUExecutionProvider"])
    names = [task.output for task in manifest.tasks]
    for batch in (1, 7, 32):
        feeds = dict(
            zip(("pixel_values", "input_ids", "attention_mask"), dev.rows(batch), strict=True)
        )
        got = session.run(names, feeds)
        for g, e in zip(got, expected, strict=True):
            assert np.abs(g - e[:batch]).max() <= TOLERANCE
            assert (g.argmax(axis=1) == e[:batch].argmax(axis=1)).all()


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_imports_with_parity(
    fusion: str, tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml", fusion=fusion)
    bundle, model = _import(tmp_path, yaml_path, "student")
    _assert_parity(bundle, model, medpix_root)
    manifest = Manifest.load(bundle)
    assert manifest.fusion == fusion
    assert verify_bundle(bundle).ok


@pytest.mark.parametrize("fusion", ["transformer_concat", "cross_attention"])
def test_teacher_section_builds_its_own_layers(
    fusion: str, tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml", fusion=fusion, teacher_layers=3)
    bundle, model = _import(tmp_path, yaml_path, "teacher")
    _assert_parity(bundle, model, medpix_root)
    manifest = Manifest.load(bundle)
    assert manifest.role == "teacher"
    recorded = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert recorded["model_config"]["fusion_layers"] == 3


@pytest.mark.parametrize(
    ("vision", "text"),
    [("tiny-deit", "tiny-distilbert"), ("tiny-mobilevit", "tiny-bert")],
)
def test_backbone_families_import_with_parity(
    vision: str, text: str, tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml", vision=vision, text=text)
    bundle, model = _import(tmp_path, yaml_path, "student")
    _assert_parity(bundle, model, medpix_root)


def test_uncalibrated_manifest_says_so_and_records_provenance(
    tmp_path: Path, tiny_backbones: None
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml", dataset="wound")
    bundle, _ = _import(tmp_path, yaml_path, "student")
    manifest = Manifest.load(bundle)
    assert manifest.task_set == "wound"
    assert [t.name for t in manifest.tasks] == ["type", "severity"]
    assert manifest.tasks[0].labels[3] == "Cut" and manifest.tasks[1].labels == [
        "Mild",
        "Moderate",
        "Severe",
    ]
    assert [t.temperature for t in manifest.tasks] == [1.0, 1.0]
    assert manifest.metrics["calibration"] == "uncalibrated" and "dev" not in manifest.metrics
    provenance = manifest.provenance
    assert provenance["source"] == "imported" and provenance["calibrated"] is False
    assert provenance["checkpoint"] == "student_best.pth"
    assert len(provenance["checkpoint_sha256"]) == 64
    assert provenance["research_config"] == "run.yaml"
    assert provenance["tokenizer"]["sha256"].startswith("07eced37")
    assert manifest.training_config["fusion"] == {"type": "cross_attention"}
    assert manifest.preprocessing.max_text_length == 256
    parity = manifest.metrics["parity"]["max_abs_diff"]
    assert {"1", "7", "32", "all_synthetic"} < set(parity) and max(parity.values()) <= 1e-4


def test_calibrate_fits_temperatures_on_dev(
    tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml")
    args = ["--calibrate", str(medpix_root), "--dev-limit", "40", "--int8"]
    bundle, model = _import(tmp_path, yaml_path, "student", *args)
    manifest = Manifest.load(bundle)
    assert manifest.provenance["calibrated"] is True
    assert manifest.metrics["calibration"] == "temperature scaling on dev"
    for task in manifest.tasks:
        dev = manifest.metrics["dev"][task.name]
        assert task.temperature == pytest.approx(dev["temperature"]) and task.temperature != 1.0
    assert manifest.metrics["dev"]["samples"] == 40 and "int8" in manifest.metrics
    _assert_parity(bundle, model, medpix_root)


def test_int8_without_calibration_is_a_usage_error(
    tmp_path: Path, tiny_backbones: None, capsys: pytest.CaptureFixture[str]
) -> None:
    yaml_path = research_yaml(tmp_path / "run.yaml")
    args = ["import-research", "--checkpoint", "x.pth", "--config", str(yaml_path)]
    assert main([*args, "--role", "student", "--out", str(tmp_path / "b"), "--int8"]) == 2
    assert "--int8 needs --calibrate" in capsys.readouterr().err
