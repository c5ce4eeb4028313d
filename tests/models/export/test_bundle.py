"""`fusionserve export` writes a complete bundle whose manifest tells the truth, and
`fusionserve verify` passes on it and fails, with a clear message, once it is tampered with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from app.contract.manifest import INT8_MODEL_FILE, MODEL_FILE, Manifest, sha256_file
from app.contract.tasks import task_set
from fusionserve.cli import main
from models.checkpoint import load_checkpoint
from models.export.bundle import _labels
from models.export.onnx_export import ExportError
from models.multitask import count_parameters


def test_manifest_describes_the_bundle(tiny_bundle: Path, tiny_checkpoint: Path) -> None:
    manifest = Manifest.load(tiny_bundle)
    model, cfg, meta = load_checkpoint(tiny_checkpoint)
    spec = task_set("medpix")

    on_disk = {p.name for p in tiny_bundle.iterdir()} - {"manifest.json"}
    assert set(manifest.files) == on_disk
    assert {MODEL_FILE, "tokenizer.json", manifest.self_test.image} <= on_disk  # type: ignore[union-attr]
    for name, digest in manifest.files.items():
        assert sha256_file(tiny_bundle / name) == digest
    assert (tiny_bundle / "tokenizer.json").read_text(encoding="utf-8") == meta.tokenizer_json

    assert (manifest.name, manifest.task_set, manifest.role) == ("medpix-tiny", "medpix", "student")
    assert manifest.fusion == "cross_attention"
    assert manifest.backbones == {"vision": cfg.vision, "text": cfg.text}
    assert manifest.preprocessing.max_text_length == meta.max_text_length
    assert manifest.preprocessing.image_size == 224
    assert [t.name for t in manifest.tasks] == list(spec.task_names)
    for task in manifest.tasks:
        assert task.labels == list(spec.labels(task.name))
        assert task.output == f"probs_{task.name}"
        assert task.temperature == pytest.approx(manifest.metrics["dev"][task.name]["temperature"])
    assert manifest.modality_weights_output == "modality_weights"
    assert manifest.parameter_count == count_parameters(model)
    assert manifest.training_config == meta.training_config
    assert "10.1007/s41019-025-00297-8" in manifest.provenance["citation"]
    assert manifest.provenance["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert manifest.created_at and manifest.git_commit

    dev = manifest.metrics["dev"]
    assert dev["samples"] == 197
    for task in spec.task_names:
        for key in ("accuracy", "macro_f1", "auc", "ece_before", "ece", "ece_cv", "temperature"):
            assert dev[task][key] is not None, (task, key)
        assert dev[task]["ece"] <= dev[task]["ece_before"] + 1e-9  # fitted on the same split
        assert dev[task]["nll"] <= dev[task]["nll_before"] + 1e-9
    parity = manifest.metrics["parity"]["max_abs_diff"]
    lengths = [k for k in parity if k.startswith("length_")]
    assert set(parity) - set(lengths) == {"1", "7", "32", "all_dev"} and len(lengths) == 1
    assert int(lengths[0].split("_")[1]) < manifest.preprocessing.max_text_length
    assert max(parity.values()) <= 1e-4

    int8 = manifest.metrics["int8"]
    assert set(int8["dev"]) == set(spec.task_names)
    # the int8-stored Conv weights' biases were corrected with the training split's means
    train = manifest.domain.fitted_on["train"] if manifest.domain else None
    assert train is not None and int8["conv_bias_correction"] == train
    if int8["shipped"]:
        assert manifest.int8 is not None and INT8_MODEL_FILE in manifest.files
        assert all(d <= 0.01 for d in int8["macro_f1_drop"].values())
        assert manifest.self_test is not None and manifest.self_test.expected_int8 is not None
        assert manifest.int8["conv_bias_correction"] == train
        convs = manifest.int8["weight_only_int8"]["conv_weights"]
        assert convs["biases_corrected"] == convs["rewritten"] >= 1
    else:
        assert manifest.int8 is None and not (tiny_bundle / INT8_MODEL_FILE).exists()
        assert any(d > 0.01 for d in int8["macro_f1_drop"].values())


def test_self_test_sample_is_a_real_dev_sample(tiny_bundle: Path, medpix_root: Path) -> None:
    manifest = Manifest.load(tiny_bundle)
    sample = manifest.self_test
    assert sample is not None
    records = [
        json.loads(line)
        for line in (medpix_root / "descriptions_dev.jsonl").read_text().splitlines()
    ]
    matches = [
        r
        for r in records
        if (medpix_root / "images" / f"{r['image']}.png").read_bytes()
        == (tiny_bundle / sample.image).read_bytes()
    ]
    assert matches and matches[0]["Description"]["Caption"].strip() == sample.text
    assert (tiny_bundle / sample.image).stat().st_size < 200_000
    for task in manifest.tasks:
        probs = np.asarray(sample.expected[task.output])
        assert probs.shape == (len(task.labels),) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_verify_passes_on_the_fresh_bundle(
    tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tiny_bundle)]) == 0
    assert "OK" in capsys.readouterr().out


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / bundle.name))


def test_verify_fails_after_a_corrupted_byte(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    data = bytearray((bundle / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / MODEL_FILE).write_bytes(bytes(data))
    assert main(["verify", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert "FAIL" in err and "model.onnx: sha256" in err


def test_verify_fails_after_editing_the_expected_output(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    raw = json.loads((bundle / "manifest.json").read_text())
    probs = raw["self_test"]["expected"]["probs_location"]
    probs[0], probs[1] = probs[0] + 0.01, probs[1] - 0.01
    (bundle / "manifest.json").write_text(json.dumps(raw))
    assert main(["verify", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert "self-test probs_location differs from the recorded output" in err


def test_export_refuses_a_checkpoint_with_another_label_order() -> None:
    spec = task_set("medpix")
    with pytest.raises(ExportError, match="modality"):
        _labels(spec, {"modality": ["MR", "CT"]})
    assert _labels(spec, None)["location"][0] == "Abdomen"


def test_export_cli_reports_a_missing_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], medpix_tokenizer: Tokenizer
) -> None:
    assert (
        main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
