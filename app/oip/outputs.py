"""Predictions of N items → the model's OIP output tensors, and the tensors a model declares.

Per task: `probs_<task>` (FP32 [N, C], the calibrated probabilities in the manifest's label
order) and `label_<task>` (BYTES [N]); `modality_weights` (FP32 [N, 2]: image, text) when the
fusion has them; with a domain check, `domain_score_<side>` (FP32 [N]) and `in_domain_<side>`
(BOOL [N]) for the image and the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.contract.domain import SIDES
from app.contract.graph import prob_output
from app.contract.manifest import Manifest
from app.postprocess import Prediction

WEIGHTS = "modality_weights"


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str  # FP32, BOOL or BYTES
    values: np.ndarray | list[bytes]  # FP32: float32 [N, C] or [N]; BOOL: bool [N]; BYTES: N

    @property
    def shape(self) -> list[int]:
        if isinstance(self.values, np.ndarray):
            return list(self.values.shape)
        return [len(self.values)]


def declared_outputs(manifest: Manifest) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of every output the model answers; -1 is the batch axis."""
    declared = [(prob_output(t.name), "FP32", [-1, len(t.labels)]) for t in manifest.tasks]
    declared += [(f"label_{t.name}", "BYTES", [-1]) for t in manifest.tasks]
    if manifest.modality_weights_output:
        declared.append((WEIGHTS, "FP32", [-1, 2]))
    if manifest.domain is not None:
        declared += [(f"domain_score_{side}", "FP32", [-1]) for side in SIDES]
        declared += [(f"in_domain_{side}", "BOOL", [-1]) for side in SIDES]
    return declared


def output_tensors(manifest: Manifest, predictions: Sequence[Prediction]) -> list[OutputTensor]:
    tensors: list[OutputTensor] = []
    for task in manifest.tasks:
        rows = [list(p.tasks[task.name].probabilities.values()) for p in predictions]
        tensors.append(OutputTensor(prob_output(task.name), "FP32", np.asarray(rows, np.float32)))
    for task in manifest.tasks:
        labels = [p.tasks[task.name].label.encode("utf-8") for p in predictions]
        tensors.append(OutputTensor(f"label_{task.name}", "BYTES", labels))
    if manifest.modality_weights_output:
        weights = [
            [w["image"], w["text"]] for p in predictions if (w := p.modality_weights) is not None
        ]
        if len(weights) == len(predictions):
            tensors.append(OutputTensor(WEIGHTS, "FP32", np.asarray(weights, np.float32)))
    if manifest.domain is not None and all(p.domain is not None for p in predictions):
        checks = [p.domain for p in predictions if p.domain is not None]
        for side in SIDES:
            scores = np.asarray([d[side].score for d in checks], np.float32)
            tensors.append(OutputTensor(f"domain_score_{side}", "FP32", scores))
        for side in SIDES:
            flags = np.asarray([d[side].in_domain for d in checks], np.bool_)
            tensors.append(OutputTensor(f"in_domain_{side}", "BOOL", flags))
    return tensors
