"""`fusionserve evaluate` end to end on a committed bundle, and its refusals of bad arguments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from app.contract.manifest import Manifest
from tests.fusionserve.evaluate.conftest import EXPORTED, Evaluate

BUNDLE = EXPORTED / "medpix-student"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_fused_scores_reproduce_the_exporters_dev_metrics(
    precision: str, medpix_root: Path, run_evaluate: Evaluate, tmp_path: Path
) -> None:
    """The whole dev split through the service's code gives the manifest's recorded numbers."""
    args = ["--bundle", str(BUNDLE), "--data", str(medpix_root), "--precision", precision]
    status, report = run_evaluate(*args, out=precision)
    assert status == 0 and report is not None
    assert report["source"] == {
        "via": "in-process",
        "precision": precision,
        "provider": "CPUExecutionProvider",
    }
    assert report["dataset"] == {"name": "medpix-2.0", "split": "dev", "cases": 197}
    metrics = Manifest.load(BUNDLE).metrics
    # int8 is dynamic quantization: activation scales come from the whole batch, so the service's
    # batching moves its outputs a little; fp32 must match the exporter to the 6th decimal.
    recorded = metrics["dev"] if precision == "fp32" else metrics["int8"]["dev"]
    tolerance = 2e-6 if precision == "fp32" else 0.02
    for task in ("modality", "location"):
        ours, theirs = report["results"]["fused"][task], recorded[task]
        for key, their_key in [
            ("accuracy",) * 2,
            ("macro_f1",) * 2,
            ("roc_auc", "auc"),
            ("ece",) * 2,
        ]:
            assert ours[key] == pytest.approx(theirs[their_key], abs=tolerance), (task, key)
    out = tmp_path / precision
    markdown = (out / "report.md").read_text()
    for needle in ("| modality | image only |", "| location | text only |", "reliability.png"):
        assert needle in markdown
    for name in ("confusion_modality", "confusion_location", "reliability", "per_class_f1"):
        png = out / f"{name}.png"
        assert 5_000 < png.stat().st_size < 150_000, name
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bundle", "exported/nope"], "bundle not found: exported/nope"),
        (["--split", "test"], "unknown split 'test'"),
        (["--bundle", str(EXPORTED / "wound-student")], "bundle 'wound-student' predicts"),
        (["--url", "localhost:8000"], "--url must start with http://"),
        (["--url", "http://127.0.0.1:9", "--precision", "int8"], "--precision applies"),
        (["--model", "medpix-student"], "--model names a model on a server"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    args: list[str],
    message: str,
    medpix_root: Path,
    run_evaluate: Evaluate,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = {"--bundle": str(BUNDLE), "--data": str(medpix_root)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    assert run_evaluate(*(x for pair in base.items() for x in pair)) == (2, None)
    assert message in capsys.readouterr().err


def test_a_non_positive_limit_is_an_argument_error(run_evaluate: Evaluate) -> None:
    with pytest.raises(SystemExit) as exited:
        run_evaluate("--bundle", str(BUNDLE), "--data", ".", "--limit", "0")
    assert exited.value.code == 2


def test_a_bundle_the_service_would_refuse_is_refused(
    tiny_bundles: Path,
    medpix_root: Path,
    run_evaluate: Evaluate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process loading is the registry's: a changed file fails its sha256 check."""
    bundle = tmp_path / "bundles" / "medpix-student"
    shutil.copytree(tiny_bundles / "medpix-student", bundle)
    with (bundle / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    status = run_evaluate("--bundle", str(bundle), "--data", str(medpix_root), "--limit", "2")
    assert status == (2, None)
    assert "cannot be served: checksum mismatch: tokenizer.json" in capsys.readouterr().err
