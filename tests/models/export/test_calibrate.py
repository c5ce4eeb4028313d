"""Temperature scaling: recovers a known temperature, lowers NLL/ECE on a real overconfident
classifier, and the ECE implementation matches a hand computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from models.data import load_samples
from models.export.calibrate import (
    calibrate_head,
    cross_validated_ece,
    ece,
    fit_temperature,
    nll,
    softmax,
)


def _synthetic(true_temperature: float, n: int = 20000, classes: int = 5, seed: int = 0):
    """Labels drawn from softmax(z); the "model" reports z · T_true, i.e. logits whose
    calibrated temperature is exactly T_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, size=(n, classes))
    p = softmax(z)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z * true_temperature, labels


@pytest.mark.parametrize("true_temperature", [0.4, 1.0, 2.5, 6.0])
def test_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    logits, labels = _synthetic(true_temperature)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    # It is the NLL minimum: nudging it either way is worse.
    best = nll(logits, labels, fitted)
    assert best <= nll(logits, labels, fitted * 1.05)
    assert best <= nll(logits, labels, fitted / 1.05)


def test_ece_matches_a_hand_computation() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    # bins of width 1/15: {0.9}→bin 13 (acc 1), {0.8}→bin 11 (acc 0), {0.6}→bin 8 (acc 1),
    # {0.55}→bin 8 too: bin 8 has conf 0.575, acc 0.5.
    expected = 0.25 * 0.1 + 0.25 * 0.8 + 0.5 * abs(0.5 - 0.575)
    assert ece(probs, labels) == pytest.approx(expected)
    assert ece(np.eye(3), np.arange(3)) == 0.0
    with pytest.raises(ValueError):
        ece(np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_lowers_nll_and_ece_of_a_real_overconfident_classifier(medpix_root: Path) -> None:
    """A barely regularised text classifier on real MedPix captions is overconfident on dev;
    temperature scaling fitted on dev logits must lower NLL and ECE (and out-of-fold ECE)."""
    train = load_samples("medpix", medpix_root, "train")
    dev = load_samples("medpix", medpix_root, "dev")
    vectorizer = TfidfVectorizer(min_df=2)
    x_train = vectorizer.fit_transform([s.text for s in train])
    x_dev = vectorizer.transform([s.text for s in dev])
    y_train = np.array([s.labels[1] for s in train])  # location, 5 classes
    y_dev = np.array([s.labels[1] for s in dev])
    classifier = LogisticRegression(C=1e4, max_iter=3000).fit(x_train, y_train)
    logits = classifier.decision_function(x_dev)

    result = calibrate_head(logits, y_dev)
    assert result.temperature > 1.5  # overconfident → softened
    assert result.nll < result.nll_before
    assert result.ece < result.ece_before
    assert result.ece_cv < result.ece_before
    assert result.ece_cv == pytest.approx(cross_validated_ece(logits, y_dev))
    # Accuracy is untouched: temperature never changes the argmax.
    assert (softmax(logits, result.temperature).argmax(1) == logits.argmax(1)).all()
