"""Graph outputs of one item → labelled, calibrated predictions with an abstain flag.

Calibration (temperature scaling fitted on dev) is applied inside the exported graph, so the
probabilities here are already calibrated; this module only names them, flags low confidence
and turns the domain check's scores into per-side flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.contract.domain import SCORE_KEYS
from app.contract.manifest import Manifest


@dataclass(frozen=True)
class TaskPrediction:
    label: str
    probability: float
    probabilities: dict[str, float]
    low_confidence: bool


@dataclass(frozen=True)
class DomainSide:
    """One side's domain check: `score` is distance / threshold, in domain at or below 1."""

    in_domain: bool
    score: float


@dataclass(frozen=True)
class Prediction:
    tasks: dict[str, TaskPrediction]
    modality_weights: dict[str, float] | None
    domain: dict[str, DomainSide] | None = None  # image, text; None: the bundle has no check

    @property
    def out_of_domain(self) -> list[str]:
        """The sides flagged out of domain (empty: none, or no check)."""
        return [side for side, d in (self.domain or {}).items() if not d.in_domain]


def domain_sides(outputs: Mapping[str, np.ndarray], text_empty: bool) -> dict[str, DomainSide]:
    """Per-side flags from the scores `LoadedBundle.run_batch` added. A blank text is never
    flagged: the service itself substituted the bundle's fallback, which the model is meant
    to answer (an image sent alone), so only its image is judged; its score is still shown."""
    sides = {}
    for side, key in SCORE_KEYS.items():
        score = float(outputs[key])
        in_domain = score <= 1.0 or (side == "text" and text_empty)
        sides[side] = DomainSide(in_domain=in_domain, score=score)
    return sides


def postprocess(
    manifest: Manifest,
    outputs: Mapping[str, np.ndarray],
    low_confidence_threshold: float,
    text_empty: bool = False,
) -> Prediction:
    """Name the probabilities; `low_confidence` also when either side is out of domain."""
    domain = domain_sides(outputs, text_empty) if SCORE_KEYS["image"] in outputs else None
    outside = domain is not None and not all(d.in_domain for d in domain.values())
    tasks: dict[str, TaskPrediction] = {}
    for spec in manifest.tasks:
        probs = _floats(outputs[spec.output])
        if len(probs) != len(spec.labels):
            raise ValueError(f"{spec.output} has {len(probs)} values for {len(spec.labels)}")
        top = max(range(len(probs)), key=probs.__getitem__)  # the first of equal maxima
        tasks[spec.name] = TaskPrediction(
            label=spec.labels[top],
            probability=probs[top],
            probabilities=dict(zip(spec.labels, probs, strict=True)),
            low_confidence=probs[top] < low_confidence_threshold or outside,
        )
    weights = None
    if manifest.modality_weights_output and manifest.modality_weights_output in outputs:
        w = _floats(outputs[manifest.modality_weights_output])
        weights = {"image": w[0], "text": w[1]}
    return Prediction(tasks, weights, domain)


def _floats(values: np.ndarray) -> list[float]:
    """One item's few values as Python floats: a handful of numpy calls per value (argmax,
    indexing, float()) cost more on the event loop than one `tolist` (issue 26's profile)."""
    return np.asarray(values).reshape(-1).tolist()
