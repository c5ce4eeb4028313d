"""Fit the bag-of-words text model (models.bow_text) with scikit-learn's logistic regression.

The features are computed by the module itself (its counts and TF-IDF code), so the graph and
the fit can never disagree. Regularisation is chosen per task by k-fold cross-validation over
train + dev with identical descriptions kept in one fold (the train split repeats texts), then
the model is fitted on train alone, so dev stays unseen for the fusion weights and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from models.bow_text import BagOfWordsText
from models.training.tensors import SplitTensors

MAX_ITER = 3000
ABSENT_CLASS_BIAS = -30.0


def split_counts(bow: BagOfWordsText, split: SplitTensors) -> np.ndarray:
    with torch.no_grad():
        return bow.counts(split.input_ids, split.attention_mask).numpy()


def set_idf(bow: BagOfWordsText, train_counts: np.ndarray) -> None:
    """scikit-learn's smooth idf on the training texts: ln((1 + n) / (1 + df)) + 1."""
    n = train_counts.shape[0]
    df = (train_counts > 0).sum(0)
    bow.idf.copy_(torch.from_numpy(np.log((1 + n) / (1 + df)) + 1).float())


def features(bow: BagOfWordsText, counts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return bow.features(torch.from_numpy(counts)).numpy()


def full_coefficients(model: LogisticRegression, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes, V) weights and (classes,) biases whose softmax is the model's predict_proba; a
    class absent from the training rows (small smoke runs) gets a bias that rules it out."""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: softmax([-z/2, z/2]) is sigmoid(z)
        coef = np.concatenate([-coef, coef]) / 2
        intercept = np.concatenate([-intercept, intercept]) / 2
    weight = np.zeros((classes, coef.shape[1]))
    bias = np.full(classes, ABSENT_CLASS_BIAS)
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return weight, bias


def _classifier(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=MAX_ITER, class_weight="balanced", random_state=seed)


def text_groups(counts: np.ndarray) -> np.ndarray:
    """One group id per distinct text (same token counts)."""
    _, groups = np.unique(counts, axis=0, return_inverse=True)
    return np.asarray(groups).ravel()


def cross_validate_c(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, cs: Sequence[float], folds: int, seed: int
) -> dict[float, float]:
    """{C: mean macro-F1 over grouped, stratified folds}."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: dict[float, list[float]] = {float(c): [] for c in cs}
    for fit_rows, test_rows in splitter.split(x, y, groups):
        for c in cs:
            model = _classifier(float(c), seed).fit(x[fit_rows], y[fit_rows])
            guess = model.predict(x[test_rows])
            scores[float(c)].append(float(f1_score(y[test_rows], guess, average="macro")))
    return {c: float(np.mean(v)) for c, v in scores.items()}


def fit_text_model(
    bow: BagOfWordsText,
    train: SplitTensors,
    dev: SplitTensors,
    cs: Sequence[float],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """Set `bow`'s idf and heads; returns, per task, the CV score of each C and the one kept."""
    train_counts, dev_counts = split_counts(bow, train), split_counts(bow, dev)
    set_idf(bow, train_counts)
    x_train, x_dev = features(bow, train_counts), features(bow, dev_counts)
    pooled_x = np.concatenate([x_train, x_dev])
    groups = text_groups(np.concatenate([train_counts, dev_counts]))
    report: dict[str, Any] = {}
    for task, module in enumerate(bow.heads):
        assert isinstance(module, nn.Linear)
        head = module
        y_train = train.labels[:, task].numpy()
        pooled_y = np.concatenate([y_train, dev.labels[:, task].numpy()])
        scores = cross_validate_c(pooled_x, pooled_y, groups, cs, folds, seed)
        best = max(scores, key=lambda c: scores[c])
        model = _classifier(best, seed).fit(x_train, y_train)
        weight, bias = full_coefficients(model, head.out_features)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(weight).float())
            head.bias.copy_(torch.from_numpy(bias).float())
        report[str(task)] = {"cv_macro_f1_by_c": scores, "c": best}
    return report
