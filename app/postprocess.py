"""Graph outputs of one item → labelled, calibrated predictions with an abstain flag.

Calibration (temperature scaling fitted on dev) is applied inside the exported graph, so the
probabilities here are already calibrated; this module only names them and flags low confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.contract.manifest import Manifest


@dataclass(frozen=True)
class TaskPrediction:
    label: str
    probability: float
    probabilities: dict[str, float]
    low_confidence: bool


@dataclass(frozen=True)
class Prediction:
    tasks: dict[str, TaskPrediction]
    modality_weights: dict[str, float] | None


def postprocess(
    manifest: Manifest, outputs: Mapping[str, np.ndarray], low_confidence_threshold: float
) -> Prediction:
    tasks: dict[str, TaskPrediction] = {}
    for spec in manifest.tasks:
        probs = np.asarray(outputs[spec.output], dtype=np.float64).reshape(-1)
        if probs.shape[0] != len(spec.labels):
            raise ValueError(f"{spec.output} has {probs.shape[0]} values for {len(spec.labels)}")
        top = int(np.argmax(probs))
        tasks[spec.name] = TaskPrediction(
            label=spec.labels[top],
            probability=float(probs[top]),
            probabilities={label: float(p) for label, p in zip(spec.labels, probs, strict=True)},
            low_confidence=bool(probs[top] < low_confidence_threshold),
        )
    weights = None
    if manifest.modality_weights_output and manifest.modality_weights_output in outputs:
        w = np.asarray(outputs[manifest.modality_weights_output], dtype=np.float64).reshape(-1)
        weights = {"image": float(w[0]), "text": float(w[1])}
    return Prediction(tasks, weights)
