"""Dev metrics per task: accuracy, macro-F1, ROC-AUC (docs/spec.md §6.6), and the selection score.

The selection score is the mean of the two tasks' macro-F1 (the research best-on-dev rule).
ROC-AUC is binary on the positive-class probability for two classes, macro one-vs-rest
otherwise, over the classes present in the split; None when it is undefined (one class only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def task_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    num_classes = probs.shape[1]
    y_pred = probs.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(
                y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=0
            )
        ),
        "roc_auc": roc_auc(y_true, probs),
    }


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if probs.shape[1] == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    scores = [roc_auc_score((y_true == c).astype(int), probs[:, c]) for c in present]
    return float(np.mean(scores))


def split_metrics(
    task_names: Sequence[str], y_true: Sequence[np.ndarray], probs: Sequence[np.ndarray]
) -> dict[str, object]:
    """{task: {accuracy, macro_f1, roc_auc}, "mean_macro_f1": float}."""
    out: dict[str, object] = {}
    f1s = []
    for name, truth, prob in zip(task_names, y_true, probs, strict=True):
        metrics = task_metrics(truth, prob)
        f1s.append(float(metrics["macro_f1"] or 0.0))
        out[name] = metrics
    out["mean_macro_f1"] = float(np.mean(f1s))
    return out
