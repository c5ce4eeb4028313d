"""Wound loader on the real data: labels, configurable columns, twins, clear errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from app.contract.tasks import task_set
from models.data import DataError, WoundColumns, load_wound

SPEC = task_set("wound")


def _rows(root: Path, split: str) -> list[dict[str, str]]:
    with (root / f"metadata_{split}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_labels_and_text_follow_the_csv(wound_root: Path) -> None:
    samples = load_wound(wound_root, "dev")
    rows = _rows(wound_root, "dev")
    assert len(samples) == len(rows) == 442
    for row, sample in zip(rows[:25], samples, strict=False):
        assert sample.labels == (
            SPEC.labels("type").index(row["type"]),
            SPEC.labels("severity").index(row["severity"]),
        )
        assert sample.text == row["description"].strip()
        assert sample.image_path == wound_root / "images" / row["img_path"]
        assert sample.group == row["pair_id"]


def test_mirrored_twins_never_straddle_splits(wound_root: Path) -> None:
    train = {s.group for s in load_wound(wound_root, "train")}
    dev = {s.group for s in load_wound(wound_root, "dev")}
    assert train and dev and not train & dev


def _tiny_copy(wound_root: Path, tmp_path: Path, header: dict[str, str], mutate=None) -> Path:
    rows = _rows(wound_root, "dev")[:3]
    (tmp_path / "images").mkdir()
    for row in rows:
        shutil.copy(wound_root / "images" / row["img_path"], tmp_path / "images")
    if mutate:
        mutate(rows)
    with (tmp_path / "metadata_dev.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[header.get(k, k) for k in rows[0]])
        writer.writeheader()
        for row in rows:
            writer.writerow({header.get(k, k): v for k, v in row.items()})
    return tmp_path


def test_column_names_are_configurable(wound_root, tmp_path) -> None:
    rename = {"img_path": "file_path", "description": "text", "type": "wound_type"}
    root = _tiny_copy(wound_root, tmp_path, rename)
    with pytest.raises(DataError, match=r"missing column\(s\) \['img_path', 'type', 'descr"):
        load_wound(root, "dev")
    cols = WoundColumns(filepath="file_path", type="wound_type", description="text")
    got = load_wound(root, "dev", cols)
    want = load_wound(wound_root, "dev")[:3]
    assert [(s.text, s.labels, s.group, s.image_path.name) for s in got] == [
        (s.text, s.labels, s.group, s.image_path.name) for s in want
    ]


def test_unknown_label_fails_naming_row(wound_root, tmp_path) -> None:
    def mutate(rows):
        rows[2]["severity"] = "Critical"

    root = _tiny_copy(wound_root, tmp_path, {}, mutate)
    with pytest.raises(DataError, match=r"metadata_dev\.csv:4: severity label 'Critical'.*Mild"):
        load_wound(root, "dev")


def test_missing_split_file_is_named(wound_root) -> None:
    with pytest.raises(DataError, match=r"Wound test split file not found: .*metadata_test\.csv"):
        load_wound(wound_root, "test")
