"""One loader: a bundle folder becomes a whole `LoadedBundle` (real sessions) or a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.bundle_error import BundleError
from app.bundle_loader import load_bundle
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT, tiny_settings


def test_loaded_bundle_prepares_runs_and_postprocesses(tiny_bundle_dir: Path) -> None:
    bundle = load_bundle(tiny_bundle_dir / "medpix-student", tiny_settings(tiny_bundle_dir))
    assert bundle.name == "medpix-student" and bundle.version == bundle.manifest.version
    assert bundle.onnx.precision == "fp32" and bundle.load_s > 0 and bundle.warmup_s > 0
    items = [bundle.prepare(MEDPIX_IMAGE.read_bytes(), text) for text in (MEDPIX_TEXT, "")]
    outputs = bundle.run_batch(items)
    assert len(outputs) == 2
    prediction = bundle.postprocess(outputs[0], 0.5)
    assert set(prediction.tasks) == {"modality", "location"}
    assert prediction.modality_weights is not None


def test_int8_bundle_checks_the_int8_self_test(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """Serving int8 on CPU now holds the int8 graph to its own recorded output."""
    settings = tiny_settings(tmp_path, precision="int8")
    bundle = Path(shutil.copytree(tiny_bundle_dir / "wound-student", tmp_path / "wound-student"))
    assert load_bundle(bundle, settings).onnx.precision == "int8"
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["self_test"]["expected_int8"]["probs_type"][0] += 0.1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="self-test mismatch on probs_type"):
        load_bundle(bundle, settings)
    fp32 = load_bundle(bundle, tiny_settings(tmp_path))  # the fp32 graph's record is intact
    assert fp32.prepare(WOUND_IMAGE.read_bytes(), WOUND_TEXT).text_tokens > 0


def test_checksum_mismatch_is_a_bundle_error(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(tiny_bundle_dir / "medpix-teacher", tmp_path / "teacher"))
    with (bundle / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match=r"checksum mismatch: tokenizer\.json"):
        load_bundle(bundle, tiny_settings(tmp_path))
    (bundle / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="manifest unreadable"):
        load_bundle(bundle, tiny_settings(tmp_path))
