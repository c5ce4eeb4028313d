"""Temperature scaling: one temperature per head, fitted on dev logits by minimising NLL.

Why temperature scaling: it keeps every argmax (accuracy and macro-F1 are unchanged), has one
parameter per head (safe on a 200–450 sample dev split), and bakes into the graph as a divide.
NLL(β) with β = 1/T is convex, so a golden-section search over log T in a wide bracket finds
the optimum without an optimiser dependency.

ECE (15 equal-width confidence bins, top-label) is reported before and after. Fitting and
measuring on the same split flatters the "after" number, so `cross_validated_ece` also gives a
k-fold estimate (temperature fitted on k−1 folds, ECE measured on the held-out fold).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

T_MIN, T_MAX = 0.05, 20.0
ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / T)."""
    z = logits.astype(np.float64) / temperature
    z_max = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - z_max).sum(axis=1)) + z_max[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


@dataclass(frozen=True)
class ReliabilityBin:
    """One top-label confidence bin: how many rows fell in it, their accuracy and confidence."""

    lower: float
    upper: float
    count: int
    accuracy: float  # 0.0 when the bin is empty
    confidence: float  # mean top-label probability; 0.0 when the bin is empty


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins (k/n, (k+1)/n] of the top-label confidence (0 goes to the first bin).

    The one binning behind both `ece` and the reliability diagrams of `fusionserve evaluate`.
    """
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        bins.append(
            ReliabilityBin(
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                count=count,
                accuracy=float(correct[members].mean()) if count else 0.0,
                confidence=float(confidence[members].mean()) if count else 0.0,
            )
        )
    return bins


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top label: Σ_b |B|/N · |acc(B) − conf(B)|."""
    if len(labels) == 0:
        raise ValueError("ECE of an empty set")
    bins = reliability_bins(probs, labels, n_bins)
    return float(sum(b.count / len(labels) * abs(b.accuracy - b.confidence) for b in bins))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 80) -> float:
    """argmin_T NLL(softmax(logits / T), labels) for T in [T_MIN, T_MAX] (golden section)."""
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on no samples")
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(logits, labels, math.exp(log_t))

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(iterations):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(math.exp((lo + hi) / 2))


def cross_validated_ece(
    logits: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    """ECE of out-of-fold calibrated probabilities (each fold scaled by a T fitted elsewhere)."""
    n = len(labels)
    folds = max(2, min(folds, n))
    order = np.random.default_rng(seed).permutation(n)
    probs = np.empty((n, logits.shape[1]), dtype=np.float64)
    for k in range(folds):
        held = order[k::folds]
        rest = np.setdiff1d(order, held)
        temperature = fit_temperature(logits[rest], labels[rest])
        probs[held] = softmax(logits[held], temperature)
    return ece(probs, labels)


@dataclass(frozen=True)
class HeadCalibration:
    """One head's fitted temperature and its effect on dev."""

    temperature: float
    nll_before: float
    nll: float
    ece_before: float
    ece: float
    ece_cv: float  # out-of-fold estimate of `ece` (honest: T never saw the scored rows)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def calibrate_head(logits: np.ndarray, labels: np.ndarray) -> HeadCalibration:
    temperature = fit_temperature(logits, labels)
    return HeadCalibration(
        temperature=temperature,
        nll_before=nll(logits, labels),
        nll=nll(logits, labels, temperature),
        ece_before=ece(softmax(logits), labels),
        ece=ece(softmax(logits, temperature), labels),
        ece_cv=cross_validated_ece(logits, labels),
    )
