"""Distil from an exported teacher bundle (its ONNX graph) instead of a training checkpoint.

A bundle is what a team keeps and ships; its checkpoint may be gone. The graph returns
calibrated probabilities p = softmax(z / T), so T · log p equals the teacher's logits z up to a
per-row constant, which softmax — hence the KD loss — ignores. The teacher runs once over the
unaugmented training images (offline distillation: cheap on CPU); only logit distillation is
possible, since the graph does not expose the teacher's features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from app.contract.graph import prob_output
from app.contract.manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from models.data.images import normalise
from models.export.ort_eval import make_session, run_session
from models.training.losses import LOGIT_KEYS
from models.training.tensors import Batch, SplitTensors

PROB_FLOOR = 1e-12  # log(0) guard; far below any probability the KD loss can feel


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


@dataclass
class BundleTeacher:
    """A bundle's graph, tokenizer and task temperatures, for offline distillation."""

    directory: Path
    manifest: Manifest
    tokenizer: Tokenizer

    @classmethod
    def load(cls, directory: str | Path, task_set: str) -> BundleTeacher:
        root = Path(directory)
        manifest = Manifest.load(root)
        if manifest.task_set != task_set:
            raise ValueError(
                f"'distill.teacher_checkpoint': bundle task set {manifest.task_set!r} "
                f"!= data.type {task_set!r}"
            )
        return cls(root, manifest, Tokenizer.from_file(str(root / "tokenizer.json")))

    @property
    def image_size(self) -> int:
        return self.manifest.preprocessing.image_size

    @property
    def max_length(self) -> int:
        return self.manifest.preprocessing.max_text_length

    def probabilities(self, split: SplitTensors, batch_size: int) -> list[np.ndarray]:
        """Per task, the graph's calibrated probabilities for every row (split order); `split`
        carries the teacher's own token ids, fed at full length (fixed-length bundles need it)."""
        session = make_session(self.directory / MODEL_FILE)
        parts: list[list[np.ndarray]] = [[] for _ in self.manifest.tasks]
        for start in range(0, len(split), batch_size):
            rows = slice(start, start + batch_size)
            out = run_session(
                session,
                normalise(split.pixels[rows]),
                split.input_ids[rows].numpy(),
                split.attention_mask[rows].numpy(),
                batch_size,
            )
            for i, task in enumerate(self.manifest.tasks):
                parts[i].append(out[prob_output(task.name)])
        return [np.concatenate(p) for p in parts]

    def logits(self, probs: list[np.ndarray]) -> dict[str, Tensor]:
        """T · log p per task under the training loss's logit keys."""
        return {
            key: torch.from_numpy(task.temperature * np.log(np.maximum(p, PROB_FLOOR)))
            for key, task, p in zip(LOGIT_KEYS, self.manifest.tasks, probs, strict=True)
        }


class CachedTeacherLogits:
    """Teacher logits per training row, looked up by the student batch's row index."""

    def __init__(self, logits: dict[str, Tensor]) -> None:
        self.logits = {k: v.float() for k, v in logits.items()}

    def for_batch(self, student_batch: Batch) -> dict[str, Tensor]:
        return {k: v[student_batch.index] for k, v in self.logits.items()}
