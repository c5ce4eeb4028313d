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
saw. Stratified on the first task's label so every fold holds each class. The official splits
are themselves group-disjoint.

What leaks: a config that loads weights trained on the official train split (`init.
text_weights`, a fixed text branch) has seen the held-out train cases' texts, and wound
descriptions recur across photos, so one text lands on both sides (the official dev split was
cut to keep them apart); only views that do not read the case text (image only) are then clean
out-of-fold estimates (docs/evaluation/levers.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from sklearn.model_selection import StratifiedGroupKFold

# task set → (split file pattern, group column, stratification column)
_LAYOUT = {
    "medpix": ("descriptions_{split}.jsonl", "U_id", "Type"),
    "wound": ("metadata_{split}.csv", "pair_id", "type"),
}


def fold_of(labels: Sequence[str], groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """The held-out fold of each row: groups never straddle folds, labels spread evenly."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    assigned = np.full(len(labels), -1)
    for index, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        assigned[held_out] = index
    return assigned


def _read_rows(path: Path, task_set: str) -> tuple[list[str], list[dict[str, str]]]:
    """(CSV field names or [], parsed rows) of one split file."""
    text = path.read_text(encoding="utf-8")
    if task_set == "medpix":
        return [], [json.loads(line) for line in text.splitlines() if line.strip()]
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def _split_text(fields: list[str], rows: list[dict[str, str]]) -> str:
    """Rows in their split file's format: JSON lines, or CSV under `fields`."""
    if not fields:
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_folds(config_path: Path, out: Path, folds: int, seed: int) -> list[Path]:
    """Fold split files under `out/data`, one config per fold; returns the configs' paths."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data = config["data"]
    task_set, root = data["type"], Path(data["root"])
    pattern, group_key, label_key = _LAYOUT[task_set]
    columns = data.get("columns") or {}  # the wound CSV's renamed columns (`WoundColumns`)
    group_key, label_key = columns.get("group", group_key), columns.get("type", label_key)
    fields: list[str] = []
    rows: list[dict[str, str]] = []
    for split in (data.get("train_split", "train"), data.get("dev_split", "dev")):
        fields, split_rows = _read_rows(root / pattern.format(split=split), task_set)
        rows += split_rows
    assigned = fold_of(
        [str(r[label_key]) for r in rows], [str(r[group_key]) for r in rows], folds, seed
    )
    data_root = out / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        link = data_root / entry.name
        if not entry.name.endswith((".jsonl", ".csv")) and not link.exists():
            link.symlink_to(entry.resolve())
    configs = []
    for index in range(folds):
        for name, rows_of in (("train", assigned != index), ("dev", assigned == index)):
            chosen = [row for row, keep in zip(rows, rows_of, strict=True) if keep]
            path = data_root / pattern.format(split=f"cv{index}-{name}")
            path.write_text(_split_text(fields, chosen), encoding="utf-8")
        fold_config = json.loads(json.dumps(config))  # a deep copy of plain data
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
