"""Cross-validation folds on the real data sets: a partition of train + dev that keeps every
patient case / twin pair on one side, holds every first-task class in each fold, and yields
configs the trainer loads."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from models.data import WoundColumns, load_samples
from models.training.config import load_config
from models.training.cv_folds import fold_of, write_folds
from tests.conftest import REPO_ROOT

FOLDS = 5


def test_fold_of_keeps_groups_whole_and_spreads_labels() -> None:
    # groups of one label each, a rare class: a split that ignored the labels could leave a
    # fold without "b"; one that ignored the groups would cut the pairs
    labels = ["a"] * 40 + ["b"] * 10
    groups = [str(i // 2) for i in range(50)]
    folds = fold_of(labels, groups, FOLDS, seed=0)
    assert set(folds) == set(range(FOLDS))
    for group in set(groups):
        assert len({folds[i] for i, g in enumerate(groups) if g == group}) == 1
    for fold in range(FOLDS):
        held_out = Counter(label for label, f in zip(labels, folds, strict=True) if f == fold)
        assert held_out == {"a": 8, "b": 2}


def test_renamed_wound_columns_are_read_through_the_loader(
    wound_root: Path, tmp_path: Path, monkeypatch
) -> None:
    rename = {"img_path": "file_path", "type": "wound_type", "pair_id": "twin"}
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    for split in ("train", "dev"):
        with (wound_root / f"metadata_{split}.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))[:20]
        for row in rows:
            shutil.copy(wound_root / "images" / row["img_path"], root / "images")
        with (root / f"metadata_{split}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[rename.get(k, k) for k in rows[0]])
            writer.writeheader()
            writer.writerows({rename.get(k, k): v for k, v in row.items()} for row in rows)
    columns = {"filepath": "file_path", "type": "wound_type", "group": "twin"}
    source = yaml.safe_load((REPO_ROOT / "configs" / "wound-student.yaml").read_text())
    source["data"].update(root=str(root), columns=columns)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(source))
    configs = write_folds(config_path, tmp_path / "cv", 2, seed=0)
    monkeypatch.chdir(REPO_ROOT)
    everything = load_samples("wound", root, "train", WoundColumns(**columns))
    everything += load_samples("wound", root, "dev", WoundColumns(**columns))
    held_out = []
    for index, path in enumerate(configs):
        config = load_config(path)
        dev = load_samples(
            "wound", Path(config.data.root), f"cv{index}-dev", WoundColumns(**columns)
        )
        held_out += [(s.image_path.name, s.group) for s in dev]
    assert sorted(held_out) == sorted((s.image_path.name, s.group) for s in everything)


@pytest.mark.parametrize("config_name", ["medpix-student", "wound-student"])
def test_written_folds_partition_train_and_dev(
    config_name: str, tmp_path: Path, medpix_root: Path, wound_root: Path, monkeypatch
) -> None:
    source = yaml.safe_load((REPO_ROOT / "configs" / f"{config_name}.yaml").read_text())
    root = medpix_root if source["data"]["type"] == "medpix" else wound_root
    source["data"]["root"] = str(root)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(source))
    configs = write_folds(config_path, tmp_path / "cv", FOLDS, seed=0)
    assert len(configs) == FOLDS

    task_set = source["data"]["type"]
    everything = load_samples(task_set, root, "train") + load_samples(task_set, root, "dev")
    key = {(s.image_path.name, s.text, s.labels) for s in everything}
    held_out: list[tuple[str, str, tuple[int, int]]] = []
    monkeypatch.chdir(REPO_ROOT)  # the configs' other paths are relative to the repository
    for index, path in enumerate(configs):
        config = load_config(path)
        assert config.data.train_split == f"cv{index}-train"
        assert config.output_dir == str((tmp_path / "cv" / f"fold{index}").resolve())
        fold_root = Path(config.data.root)
        train = load_samples(task_set, fold_root, config.data.train_split)
        dev = load_samples(task_set, fold_root, config.data.dev_split)
        assert not {s.group for s in train} & {s.group for s in dev}
        assert {s.labels[0] for s in dev} == {s.labels[0] for s in everything}
        rows = [(s.image_path.name, s.text, s.labels) for s in train + dev]
        assert len(rows) == len(everything) and set(rows) == key
        held_out += [(s.image_path.name, s.text, s.labels) for s in dev]
    assert sorted(held_out) == sorted((s.image_path.name, s.text, s.labels) for s in everything)
    sizes = np.array(
        [
            len(load_samples(task_set, Path(load_config(p).data.root), f"cv{i}-dev"))
            for i, p in enumerate(configs)
        ]
    )
    assert sizes.max() - sizes.min() <= 0.1 * sizes.mean()
