"""The cases an evaluation scores: one dataset split, read with the training loaders.

The dataset kind is recognised from its files and must be the bundle's task set, with the
bundle's labels in the contract's order; otherwise the scores would be meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.contract.manifest import Manifest
from app.contract.tasks import task_set
from fusionserve.evaluate.errors import EvaluateError
from models.data import SPLIT_FILES, DataError, load_samples

# (prefix, suffix) of each data set's split files
_SPLIT_AFFIXES = {kind: tuple(name.split("{split}")) for kind, name in SPLIT_FILES.items()}


@dataclass(frozen=True)
class Case:
    """One item: the image file's bytes, its text and the class index per task."""

    name: str  # image file name, for messages (the text is never logged)
    image: bytes
    text: str
    labels: tuple[int, int]


def dataset_kind(root: Path) -> str:
    """'medpix' or 'wound', from the split files present in `root`."""
    if not root.is_dir():
        raise EvaluateError(f"dataset folder not found: {root}")
    kinds = [k for k, (pre, suf) in _SPLIT_AFFIXES.items() if any(root.glob(f"{pre}*{suf}"))]
    if len(kinds) != 1:
        raise EvaluateError(
            f"{root} is not a MedPix-2.0 (descriptions_<split>.jsonl) or "
            "Wound-1-0 (metadata_<split>.csv) dataset folder"
        )
    return kinds[0]


def available_splits(root: Path, kind: str) -> list[str]:
    prefix, suffix = _SPLIT_AFFIXES[kind]
    return sorted(p.name[len(prefix) : -len(suffix)] for p in root.glob(f"{prefix}*{suffix}"))


def check_bundle_fits(kind: str, manifest: Manifest) -> None:
    """The dataset's task set and label order must be exactly the bundle's."""
    if kind != manifest.task_set:
        raise EvaluateError(
            f"the dataset holds the {kind!r} task set but bundle {manifest.name!r} predicts "
            f"{manifest.task_set!r} (tasks {[t.name for t in manifest.tasks]})"
        )
    spec = task_set(kind)
    bundle_tasks = [(t.name, tuple(t.labels)) for t in manifest.tasks]
    if bundle_tasks != list(spec.tasks):
        raise EvaluateError(
            f"bundle {manifest.name!r} has tasks/labels {bundle_tasks}; the {kind!r} dataset "
            f"needs {list(spec.tasks)}"
        )


def load_cases(root: Path, split: str, manifest: Manifest, limit: int | None = None) -> list[Case]:
    """The split's cases (the first `limit` when given) for this bundle."""
    kind = dataset_kind(root)
    check_bundle_fits(kind, manifest)
    if split not in (splits := available_splits(root, kind)):
        raise EvaluateError(f"unknown split {split!r} in {root}; available: {', '.join(splits)}")
    try:
        samples = load_samples(kind, root, split)
    except DataError as exc:
        raise EvaluateError(str(exc)) from None
    return [
        Case(s.image_path.name, s.image_path.read_bytes(), s.text, s.labels)
        for s in samples[:limit]
    ]
