"""Grouped, stratified k-fold splits of train + dev, written as split files a training config
can name, so one recipe is measured on every case and not on the dev split alone.

    python -m models.training.cv_folds --config configs/medpix-student.yaml \
        --out ../artifacts/cv/medpix-student [--folds 5] [--seed 0]

run from the repository root (the config's paths are relative to it), writes under `--out` a
data root (the rows of fold i as split files `cv{i}-train` and `cv{i}-dev`, in the data set's
own format; every other entry of the data root linked) and one config per fold
(`fold{i}.yaml`: the input config with `data.root`, `data.train_split`, `data.dev_split` and
`output_dir` replaced). Train each with `fusionserve train <role> --config <out>/fold{i}.yaml`
from the repository root, then summarise with `python -m models.training.seed_summary`.

Why grouped: MedPix has several slices per patient case (`U_id`) and every wound photo has a
mirrored twin (`pair_id`); a case on both sides of a split would be scored on what the model
saw. Groups and labels are the loaders' own (`Sample.group`, the first task's label), so the
folds split what training reads. Stratified so every fold holds each class. The official
splits are themselves group-disjoint.

What leaks: a config that loads weights trained on the official train split (`init.
text_weights`, a fixed text branch) has seen the held-out train cases' texts, and wound
descriptions recur across photos, so one text lands on both sides (the official dev split was
cut to keep them apart); only views that do not read the case text (image only) are then clean
out-of-fold estimates (docs/evaluation/levers.md).
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from sklearn.model_selection import StratifiedGroupKFold

from models.data import SPLIT_FILES, Sample, WoundColumns, load_samples


def fold_of(labels: Sequence[str], groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """The held-out fold of each row: groups never straddle folds, labels spread evenly."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    assigned = np.full(len(labels), -1)
    for index, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        assigned[held_out] = index
    return assigned


def _read_rows(path: Path, task_set: str) -> tuple[list[str], list[dict[str, str]]]:
    """(CSV field names, or [] for JSON lines; parsed rows) of one split file."""
    text = path.read_text(encoding="utf-8")
    if task_set == "medpix":
        return [], [json.loads(line) for line in text.splitlines() if line.strip()]
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def _split_text(task_set: str, fields: list[str], rows: list[dict[str, str]]) -> str:
    """Rows in their split file's format: JSON lines (MedPix), or CSV under `fields`."""
    if task_set == "medpix":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _rows_and_samples(
    task_set: str, root: Path, splits: Sequence[str], columns: WoundColumns | None
) -> tuple[list[str], list[dict[str, str]], list[Sample]]:
    """The splits' raw rows and, row for row, the loaders' samples: folds group and stratify on
    what training reads (`Sample.group`, the first label), not on a second reading of the
    columns."""
    fields: list[str] | None = None
    rows: list[dict[str, str]] = []
    samples: list[Sample] = []
    for split in splits:
        split_fields, split_rows = _read_rows(
            root / SPLIT_FILES[task_set].format(split=split), task_set
        )
        if fields is not None and split_fields != fields:
            raise ValueError(f"split {split!r} has columns {split_fields}, not {fields}")
        fields = split_fields
        split_samples = load_samples(task_set, root, split, columns)
        if len(split_samples) != len(split_rows):
            raise ValueError(
                f"split {split!r}: {len(split_rows)} rows, {len(split_samples)} samples"
            )
        rows += split_rows
        samples += split_samples
    return fields or [], rows, samples


def write_folds(config_path: Path, out: Path, folds: int, seed: int) -> list[Path]:
    """Fold split files under `out/data`, one config per fold; returns the configs' paths."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data = config["data"]
    task_set, root = data["type"], Path(data["root"])
    columns = WoundColumns(**data["columns"]) if data.get("columns") else None
    splits = (data.get("train_split", "train"), data.get("dev_split", "dev"))
    fields, rows, samples = _rows_and_samples(task_set, root, splits, columns)
    assigned = fold_of([str(s.labels[0]) for s in samples], [s.group for s in samples], folds, seed)
    data_root = out / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    prefix, suffix = SPLIT_FILES[task_set].split("{split}")
    for entry in root.iterdir():  # images and the rest; not the split files (made below)
        link = data_root / entry.name
        is_split = entry.name.startswith(prefix) and entry.name.endswith(suffix)
        if not is_split and not link.exists():
            link.symlink_to(entry.resolve())
    configs = []
    for index in range(folds):
        for name, rows_of in (("train", assigned != index), ("dev", assigned == index)):
            chosen = [row for row, keep in zip(rows, rows_of, strict=True) if keep]
            path = data_root / SPLIT_FILES[task_set].format(split=f"cv{index}-{name}")
            path.write_text(_split_text(task_set, fields, chosen), encoding="utf-8")
        fold_config = copy.deepcopy(config)
        fold_config["data"].update(
            root=str(data_root.resolve()),
            train_split=f"cv{index}-train",
            dev_split=f"cv{index}-dev",
        )
        fold_config["output_dir"] = str((out / f"fold{index}").resolve())
        path = out / f"fold{index}.yaml"
        path.write_text(yaml.safe_dump(fold_config, sort_keys=False), encoding="utf-8")
        configs.append(path)
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the training config")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    args = parser.parse_args(argv)
    for path in write_folds(args.config, args.out, args.folds, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
