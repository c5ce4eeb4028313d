"""Per-task scores of one condition: the training metrics (accuracy, macro-F1, ROC-AUC), the
export's ECE and its bins, the confusion matrix and per-class precision/recall/F1.

Reuses `models.training.metrics` and `models.export.calibrate` (both torch-free) so a number
here means what it means in a bundle's manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from app.contract.manifest import Manifest
from fusionserve.evaluate.outputs import ItemOutput, mean_modality_weights, probability_matrix
from models.export.calibrate import ece, reliability_bins
from models.training.metrics import task_metrics


def task_scores(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Scores of one task; confusion_matrix rows are true labels, columns predicted ones."""
    classes = list(range(len(labels)))
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        **task_metrics(y_true, probs),
        "ece": ece(probs, y_true),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "reliability": [asdict(b) for b in reliability_bins(probs, y_true)],
    }


def condition_scores(
    manifest: Manifest, truth: dict[str, np.ndarray], outputs: Sequence[ItemOutput]
) -> dict[str, Any]:
    """{task: task_scores, "modality_weights": mean image/text weights or None}."""
    scores: dict[str, Any] = {
        spec.name: task_scores(
            truth[spec.name], probability_matrix(manifest, spec.name, outputs), spec.labels
        )
        for spec in manifest.tasks
    }
    scores["modality_weights"] = mean_modality_weights(outputs)
    return scores
