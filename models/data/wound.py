"""Wound-1-0 loader: `metadata_{split}.csv` rows, column names configurable (docs/spec.md §5.2).

Text is the description column only; `pair_id` (when present) groups a photo with its mirrored
twin so callers can check twins never straddle splits.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from app.contract.tasks import task_set
from models.data.samples import DataError, Sample, label_index, require_file

SPLIT_FILE = "metadata_{split}.csv"


@dataclass(frozen=True)
class WoundColumns:
    """CSV column names; defaults are the research engine's."""

    filepath: str = "img_path"
    type: str = "type"
    severity: str = "severity"
    description: str = "description"
    group: str = "pair_id"  # optional column


def load_wound(root: str | Path, split: str, columns: WoundColumns | None = None) -> list[Sample]:
    """Samples of one split; missing columns/images or unknown labels raise DataError."""
    root = Path(root)
    cols = columns or WoundColumns()
    spec = task_set("wound")
    path = require_file(root / SPLIT_FILE.format(split=split), f"Wound {split} split file")
    samples: list[Sample] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        required = [cols.filepath, cols.type, cols.severity, cols.description]
        missing = [name for name in required if name not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; header has {header}")
        for row_no, row in enumerate(reader, start=2):
            where = f"{path}:{row_no}"
            rel = (row.get(cols.filepath) or "").strip()
            if not rel:
                raise DataError(f"{where}: empty {cols.filepath!r}")
            image = require_file(root / "images" / rel, f"{where}: image")
            labels = (
                label_index(spec, "type", (row.get(cols.type) or "").strip(), where),
                label_index(spec, "severity", (row.get(cols.severity) or "").strip(), where),
            )
            group = (row.get(cols.group) or "").strip() or rel
            text = (row.get(cols.description) or "").strip()
            samples.append(Sample(image, text, labels, group))
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples
