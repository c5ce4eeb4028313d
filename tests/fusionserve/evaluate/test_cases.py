"""Reading a split for a bundle: real dataset files, and clear refusals when they do not fit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from app.contract.manifest import Manifest
from fusionserve.evaluate.cases import available_splits, dataset_kind, load_cases
from fusionserve.evaluate.errors import EvaluateError
from tests.fusionserve.evaluate.conftest import EXPORTED

MEDPIX = Manifest.load(EXPORTED / "medpix-student")
WOUND = Manifest.load(EXPORTED / "wound-student")


def test_medpix_dev_cases_carry_images_texts_and_labels(medpix_root: Path) -> None:
    cases = load_cases(medpix_root, "dev", MEDPIX)
    assert len(cases) == 197
    assert Counter(c.labels[0] for c in cases) == {0: 84, 1: 113}  # README: CT 84 / MR 113
    assert all(c.image[:8] == b"\x89PNG\r\n\x1a\n" for c in cases)
    assert sum(bool(c.text) for c in cases) > 150
    assert len(load_cases(medpix_root, "dev", MEDPIX, limit=5)) == 5


def test_dataset_kind_and_splits_come_from_the_files(medpix_root: Path, wound_root: Path) -> None:
    assert dataset_kind(medpix_root) == "medpix"
    assert dataset_kind(wound_root) == "wound"
    assert available_splits(wound_root, "wound") == ["dev", "train"]


def test_unknown_split_names_the_available_ones(wound_root: Path) -> None:
    with pytest.raises(EvaluateError, match=r"unknown split 'test'.*available: dev, train"):
        load_cases(wound_root, "test", WOUND)


def test_a_bundle_of_another_task_set_is_refused(medpix_root: Path) -> None:
    with pytest.raises(EvaluateError, match=r"'medpix' task set but bundle 'wound-student'"):
        load_cases(medpix_root, "dev", WOUND)


def test_a_bundle_with_other_label_order_is_refused(medpix_root: Path) -> None:
    shuffled = MEDPIX.model_copy(deep=True)
    shuffled.tasks[0].labels = ["MR", "CT"]
    with pytest.raises(EvaluateError, match="tasks/labels"):
        load_cases(medpix_root, "dev", shuffled)


def test_a_folder_that_is_no_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EvaluateError, match=r"not a MedPix-2\.0"):
        dataset_kind(tmp_path)
    with pytest.raises(EvaluateError, match="dataset folder not found"):
        dataset_kind(tmp_path / "missing")
