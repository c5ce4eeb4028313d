"""`fusionserve evaluate` measuring the committed MedPix student's domain check: own dev cases,
the wound dev cases (`--ood-data`) and the synthetic images, with flag rates, AUROC and the
report's section; a bundle without a check says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusionserve.evaluate.domain import auroc
from tests.fusionserve.evaluate.conftest import EXPORTED, Evaluate

BUNDLE = EXPORTED / "medpix-student"


def test_rates_and_auroc_against_the_other_task_set(
    medpix_root: Path, wound_root: Path, run_evaluate: Evaluate, tmp_path: Path
) -> None:
    args = ["--bundle", str(BUNDLE), "--data", str(medpix_root), "--limit", "40"]
    status, report = run_evaluate(*args, "--ood-data", str(wound_root), out="domain")
    assert status == 0 and report is not None
    domain = report["domain"]
    assert domain["own"]["cases"] == 40 and domain["own"]["either"] <= 0.1
    other = domain["other_task_set"]
    assert other["dataset"] == "wound-1-0" and other["cases"] == 40
    assert other["image"] >= 0.95 and other["either"] >= other["image"]
    assert domain["auroc"]["image"] >= 0.98
    synthetic = domain["synthetic_images"]
    assert synthetic["cases"] == 16
    kinds = synthetic["by_kind"]
    # every kind, white-on-black text screenshots included: the pooled last layer placed those
    # near CT slices (2 of 4 flagged); the early block's part sees the strokes
    assert kinds == {"blank": 1.0, "black": 1.0, "noise": 1.0, "text_screenshot": 1.0}, kinds
    markdown = (tmp_path / "domain" / "report.md").read_text()
    assert "## Domain check" in markdown and "wound-1-0 dev flagged" in markdown


def test_a_bundle_without_a_check_reports_none(
    tiny_bundles: Path, medpix_root: Path, run_evaluate: Evaluate
) -> None:
    args = ["--bundle", str(tiny_bundles / "medpix-student"), "--data", str(medpix_root)]
    status, report = run_evaluate(*args, "--limit", "4")
    assert status == 0 and report is not None and report["domain"] is None


def test_auroc_counts_ties_half() -> None:
    assert auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.5
