"""MedPix-2.0 loader: one sample per line of `descriptions_{split}.jsonl` (docs/spec.md §5.1).

The model text is `Description.Caption` only. `Type`, `Location`, `Description.Modality`,
`Plane` and the ACR codes state the labels and must never reach the model (label leakage).
"""

from __future__ import annotations

import json
from pathlib import Path

from app.contract.tasks import task_set
from models.data.samples import DataError, Sample, label_index, require_file

SPLIT_FILE = "descriptions_{split}.jsonl"

MODALITY_FIELD = "Type"
LOCATION_FIELD = "Location Category"


def caption_of(record: dict[str, object]) -> str:
    """The caption text alone; empty/missing becomes "" (the text encoder substitutes)."""
    description = record.get("Description")
    caption = description.get("Caption") if isinstance(description, dict) else None
    return caption.strip() if isinstance(caption, str) else ""


def load_medpix(root: str | Path, split: str) -> list[Sample]:
    """Samples of one split; unknown labels, bad JSON or missing images raise DataError."""
    root = Path(root)
    spec = task_set("medpix")
    path = require_file(root / SPLIT_FILE.format(split=split), f"MedPix {split} split file")
    samples: list[Sample] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
            stem = record.get("image")
            if not isinstance(stem, str) or not stem:
                raise DataError(f"{where}: missing 'image' field")
            image = require_file(root / "images" / f"{stem}.png", f"{where}: image")
            labels = (
                label_index(spec, "modality", record.get(MODALITY_FIELD), where),
                label_index(spec, "location", record.get(LOCATION_FIELD), where),
            )
            group = str(record.get("U_id") or stem)
            samples.append(Sample(image, caption_of(record), labels, group))
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples
