"""Dataset loaders (MedPix-2.0, Wound-1-0), label maps and the image cache for training."""

from __future__ import annotations

from pathlib import Path

from models.data.medpix import SPLIT_FILE as MEDPIX_SPLIT_FILE
from models.data.medpix import load_medpix
from models.data.samples import DataError, Sample, label_index
from models.data.wound import SPLIT_FILE as WOUND_SPLIT_FILE
from models.data.wound import WoundColumns, load_wound

DATASET_TYPES = ("medpix", "wound")
# each data set's split file, `{split}` for the split's name
SPLIT_FILES = {"medpix": MEDPIX_SPLIT_FILE, "wound": WOUND_SPLIT_FILE}


def load_samples(
    kind: str, root: str | Path, split: str, columns: WoundColumns | None = None
) -> list[Sample]:
    """Samples of `split` for dataset `kind` ("medpix" or "wound"; also its task-set name)."""
    if kind == "medpix":
        return load_medpix(root, split)
    if kind == "wound":
        return load_wound(root, split, columns)
    raise DataError(f"unknown dataset type {kind!r}; valid: {list(DATASET_TYPES)}")


__all__ = [
    "DATASET_TYPES",
    "SPLIT_FILES",
    "DataError",
    "Sample",
    "WoundColumns",
    "label_index",
    "load_medpix",
    "load_samples",
    "load_wound",
]
