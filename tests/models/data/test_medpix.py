"""MedPix loader on the real data: labels, caption-only text, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.contract.tasks import task_set
from models.data import DataError, load_samples
from models.data.medpix import load_medpix

SPEC = task_set("medpix")


def _raw_rows(root: Path, split: str, n: int) -> list[dict]:
    with (root / f"descriptions_{split}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(n)]


def test_labels_and_text_follow_the_raw_rows(medpix_root: Path) -> None:
    samples = load_medpix(medpix_root, "dev")
    assert len(samples) == 197
    for raw, sample in zip(_raw_rows(medpix_root, "dev", 20), samples, strict=False):
        assert sample.labels == (
            SPEC.labels("modality").index(raw["Type"]),
            SPEC.labels("location").index(raw["Location Category"]),
        )
        assert sample.text == raw["Description"]["Caption"].strip()
        assert sample.image_path == medpix_root / "images" / f"{raw['image']}.png"
        assert sample.group == raw["U_id"]


def test_text_is_the_caption_only_never_label_fields(medpix_root: Path) -> None:
    samples = load_samples("medpix", medpix_root, "dev")
    rows = _raw_rows(medpix_root, "dev", 197)
    for raw, sample in zip(rows, samples, strict=True):
        leaky = [raw["Description"].get("Modality"), raw.get("Location")]
        for field in leaky:
            if field and field not in raw["Description"]["Caption"]:
                assert field not in sample.text


def test_class_counts_match_the_readme(medpix_root: Path) -> None:
    samples = load_medpix(medpix_root, "dev")
    modality = [s.labels[0] for s in samples]
    assert (modality.count(0), modality.count(1)) == (84, 113)


def _tiny_copy(medpix_root: Path, tmp_path: Path, mutate=None) -> Path:
    rows = _raw_rows(medpix_root, "dev", 3)
    (tmp_path / "images").mkdir()
    for row in rows:
        name = f"{row['image']}.png"
        shutil.copy(medpix_root / "images" / name, tmp_path / "images" / name)
    if mutate:
        mutate(rows)
    with (tmp_path / "descriptions_dev.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return tmp_path


def test_unknown_label_fails_naming_line_and_valid_labels(medpix_root, tmp_path) -> None:
    def mutate(rows):
        rows[1]["Type"] = "XR"

    root = _tiny_copy(medpix_root, tmp_path, mutate)
    with pytest.raises(DataError, match=r"descriptions_dev\.jsonl:2: modality label 'XR'.*CT"):
        load_medpix(root, "dev")


def test_empty_caption_is_kept_empty_for_the_encoder_fallback(medpix_root, tmp_path) -> None:
    def mutate(rows):
        rows[0]["Description"]["Caption"] = "   "

    samples = load_medpix(_tiny_copy(medpix_root, tmp_path, mutate), "dev")
    assert samples[0].text == ""


def test_missing_split_and_missing_image_are_named(medpix_root, tmp_path) -> None:
    with pytest.raises(DataError, match=r"MedPix test split file not found: .*descriptions_test"):
        load_medpix(medpix_root, "test")
    root = _tiny_copy(medpix_root, tmp_path)
    first = sorted((root / "images").iterdir())[0]
    first.unlink()
    with pytest.raises(DataError, match=rf"image not found: .*{first.name}"):
        load_medpix(root, "dev")


def test_unknown_dataset_type_lists_valid_ones(medpix_root) -> None:
    with pytest.raises(DataError, match=r"unknown dataset type 'xray'.*medpix.*wound"):
        load_samples("xray", medpix_root, "dev")
