"""`fusionserve verify`: passes on intact bundles, fails with a clear message on every kind of
tampering (bytes, expected outputs, missing/extra files, broken manifest, wrong signature)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.contract.manifest import Manifest, sha256_file
from app.verify_cli import expand_bundles, verify_bundle
from fusionserve.cli import main


def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def _edit_manifest(bundle: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((bundle / "manifest.json").read_text())
    edit(raw)
    (bundle / "manifest.json").write_text(json.dumps(raw))


def test_passes_on_every_intact_bundle(
    tiny_bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tiny_bundle_dir)]) == 0  # a folder of bundles expands
    out = capsys.readouterr().out
    for name in ("medpix-student", "medpix-teacher", "wound-student"):
        assert f"OK   {tiny_bundle_dir / name}" in out
    assert "model.int8.onnx self-test" in out  # the int8 graph is run too


def test_expand_bundles(tiny_bundle_dir: Path) -> None:
    names = [p.name for p in expand_bundles([str(tiny_bundle_dir)])]
    assert names == ["medpix-student", "medpix-teacher", "wound-student"]
    single = tiny_bundle_dir / "wound-student"
    assert expand_bundles([str(single)]) == [single]


def test_fails_on_a_flipped_byte(
    tiny_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(tiny_bundle_dir / "medpix-student", tmp_path)
    data = bytearray((bundle / "tokenizer.json").read_bytes())
    data[10] ^= 0x20
    (bundle / "tokenizer.json").write_bytes(bytes(data))
    assert main(["verify", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL {bundle}" in err and "tokenizer.json: sha256" in err


def test_fails_on_an_edited_expected_output(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle_dir / "medpix-student", tmp_path)

    def edit(raw: dict) -> None:  # type: ignore[type-arg]
        raw["self_test"]["expected"]["probs_modality"][0] += 0.001

    _edit_manifest(bundle, edit)
    report = verify_bundle(bundle)
    assert not report.ok
    assert any("self-test probs_modality differs" in p for p in report.problems)


def test_fails_when_the_self_test_text_changes(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle_dir / "medpix-teacher", tmp_path)
    _edit_manifest(bundle, lambda raw: raw["self_test"].update(text="unrelated words"))
    assert any("self-test" in p for p in verify_bundle(bundle).problems)


def test_fails_on_missing_and_unlisted_files(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle_dir / "wound-student", tmp_path)
    (bundle / "model.int8.onnx").unlink()
    (bundle / "notes.txt").write_text("stray")
    problems = verify_bundle(bundle).problems
    assert "model.int8.onnx: missing" in problems
    assert "notes.txt: file in the bundle but not in the manifest" in problems


def test_serving_settings_file_is_not_an_exported_file(
    tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    """A deployment's serving.json beside the bundle is configuration, not part of the export."""
    bundle = _copy(tiny_bundle_dir / "wound-student", tmp_path)
    (bundle / "serving.json").write_text('{"max_batch_size": 8}')
    assert verify_bundle(bundle).ok


def test_fails_on_a_broken_or_missing_manifest(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle_dir / "medpix-student", tmp_path)
    (bundle / "manifest.json").write_text("{not json")
    assert any("not valid JSON" in p for p in verify_bundle(bundle).problems)
    (bundle / "manifest.json").write_text(json.dumps({"name": "x"}))
    assert any("does not match the schema" in p for p in verify_bundle(bundle).problems)
    (bundle / "manifest.json").unlink()
    assert verify_bundle(bundle).problems == ["manifest.json is missing"]
    nowhere = tmp_path / "nowhere"
    assert verify_bundle(nowhere).problems == [f"{nowhere} is not a folder"]


def test_fails_when_the_graph_does_not_match_the_labels(
    tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    """A manifest promising 3 modality labels for a 2-wide output is caught before running."""
    bundle = _copy(tiny_bundle_dir / "medpix-student", tmp_path)
    _edit_manifest(bundle, lambda raw: raw["tasks"][0]["labels"].append("PET"))
    problems = verify_bundle(bundle).problems
    assert any("probs_modality" in p and "[batch, 3]" in p for p in problems), problems


def test_fails_when_a_model_file_is_swapped_and_rehashed(
    tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    """Even with a consistent sha256, another graph fails the self-test."""
    bundle = _copy(tiny_bundle_dir / "medpix-student", tmp_path)
    other = tiny_bundle_dir / "medpix-teacher" / "model.onnx"
    shutil.copyfile(other, bundle / "model.onnx")
    manifest = Manifest.load(bundle)
    manifest.files["model.onnx"] = sha256_file(bundle / "model.onnx")
    manifest.save(bundle)
    report = verify_bundle(bundle)
    assert not report.ok
    assert all("sha256" not in p for p in report.problems)
    assert any("model.onnx" in p for p in report.problems)


@pytest.mark.parametrize(("shift", "passes"), [(0.01, True), (0.1, False)])
def test_int8_expectation_allows_other_cpus_kernels_only(
    tiny_bundle_dir: Path, tmp_path: Path, shift: float, passes: bool
) -> None:
    """A recorded int8 output may be ~1e-2 off on a CPU with other int8 kernels (measured on
    the committed bundles); a real change of the int8 graph's answer is still caught."""
    bundle = _copy(tiny_bundle_dir / "wound-student", tmp_path)

    def edit(raw: dict) -> None:  # type: ignore[type-arg]
        assert raw["self_test"]["tolerance_int8"] == 2e-3
        raw["self_test"]["expected_int8"]["probs_type"][0] += shift

    _edit_manifest(bundle, edit)
    report = verify_bundle(bundle)
    assert report.ok is passes, report.problems
    if not passes:
        assert any("model.int8.onnx: self-test probs_type differs" in p for p in report.problems)
