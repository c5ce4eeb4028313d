"""The one record type every dataset loader returns, and label lookup that fails loudly.

The research code silently mapped unknown labels to class 0 (docs/spec.md §5.1); here an unknown
label stops loading with the file, row and the valid labels named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.contract.tasks import TaskSetSpec


class DataError(ValueError):
    """A dataset file is missing or holds a row the task set cannot represent."""


@dataclass(frozen=True)
class Sample:
    """One image + its text + the class index for each of the task set's two tasks."""

    image_path: Path
    text: str
    labels: tuple[int, int]
    group: str  # samples sharing a group must stay in one split (MedPix case, wound twin pair)


def label_index(spec: TaskSetSpec, task: str, value: object, where: str) -> int:
    """Class index of `value` for `task`, or DataError naming the row and the valid labels."""
    labels = spec.labels(task)
    if not isinstance(value, str) or value not in labels:
        raise DataError(
            f"{where}: {task} label {value!r} is not in task set {spec.name!r} "
            f"(valid: {list(labels)})"
        )
    return labels.index(value)


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a file, else DataError naming what was expected there."""
    if not path.is_file():
        raise DataError(f"{what} not found: {path.resolve()}")
    return path
