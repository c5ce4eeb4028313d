"""What one prediction contributes to an evaluation, whichever path produced it.

Both paths reduce an answer to per-task label → probability maps (the service's calibrated
probabilities) and the modality weights, so the scoring cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.contract.manifest import Manifest


@dataclass(frozen=True)
class ItemOutput:
    probabilities: dict[str, dict[str, float]]  # task → label → probability
    modality_weights: dict[str, float] | None  # {"image", "text"} where the fusion has them
    domain_scores: dict[str, float] | None = None  # image, text; None: no domain check


class Predictor(Protocol):
    """Answers (image bytes, text) items in order; `source` says where the answers came from."""

    source: dict[str, str]

    def predict(self, items: Sequence[tuple[bytes, str]]) -> list[ItemOutput]: ...

    def close(self) -> None: ...


def probability_matrix(manifest: Manifest, task: str, outputs: Sequence[ItemOutput]) -> np.ndarray:
    """[N, C] float64 in the bundle's label order; a label set that differs is an error."""
    labels = manifest.task(task).labels
    rows = []
    for output in outputs:
        probs: Mapping[str, float] = output.probabilities[task]
        if set(probs) != set(labels):
            raise ValueError(f"{task}: answer labels {sorted(probs)} are not {labels}")
        rows.append([probs[label] for label in labels])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(labels))


def mean_modality_weights(outputs: Sequence[ItemOutput]) -> dict[str, float] | None:
    weights = [o.modality_weights for o in outputs if o.modality_weights is not None]
    if not weights or len(weights) != len(outputs):
        return None
    return {key: float(np.mean([w[key] for w in weights])) for key in ("image", "text")}
