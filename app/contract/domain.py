"""The domain check: does an input's image (or text) look like what the model was trained on?

A classifier answers every input with some label; a wound photo sent to the MedPix model comes
back as a confident "CT, Head". So every bundle exported with data carries a fitted model of
its training inputs (`domain.npz`, covered by the manifest's sha256), and every answer says,
per side, how far the input lies from it.

Method (`mahalanobis-ledoit-wolf`, version 1). Each side (image, text) has two parts, both
extra graph outputs: `embedding_<side>`, the backbone's pre-fusion features (what the model
sees), and `input_stats_<side>`, a few statistics of the input itself (image: channel means,
contrast, colourfulness, roughness, dark/bright fractions, a 3x3 layout; text: how common its
tokens were in the training texts). Features of a backbone trained from scratch on one task
set barely react to a photo or a blank page; the input statistics do, for any backbone. Per
part: class means of the training split (task 1's labels) and one Ledoit-Wolf shrunk
covariance of the class-centred values; the distance is the Mahalanobis distance to the
nearest class mean. The covariance is stored as its top `k` eigen-directions plus one
variance for all others (exact when `k` is the width; the probabilistic-PCA approximation
above it), so a 1,280-wide EfficientNet feature costs a [d x k] product per item, not
[d x d]. Each part's threshold is a quantile of its dev distances, one rate for all parts,
the largest that keeps the dev cases flagged on either side within the manifest's stated
false-flag rate. A side's score is the largest of its parts' distance / threshold: above 1
is out of domain, for every bundle and side alike.

Numpy only: this runs in the service (torch-free), in `fusionserve verify` and at export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DOMAIN_FILE = "domain.npz"
DOMAIN_METHOD = "mahalanobis-ledoit-wolf"
DOMAIN_VERSION = 1
SIDES = ("image", "text")
PARTS = ("embedding", "input_stats")
SCORE_KEYS = {side: f"domain_score_{side}" for side in SIDES}  # per item, added by serving
_FIELDS = ("means", "basis", "weights", "residual", "threshold")


def part_output(side: str, part: str) -> str:
    """Graph output holding one part of one side, f32[B, width]."""
    return f"{part}_{side}"


DOMAIN_OUTPUTS = tuple(part_output(side, part) for side in SIDES for part in PARTS)


class DomainModelError(ValueError):
    """A domain file that is not one this code can score with."""


@dataclass(frozen=True)
class PartModel:
    """One part's fitted check; `distances` is the Mahalanobis distance to the nearest mean."""

    means: np.ndarray  # f64 [C, d]: class means of the training values
    basis: np.ndarray  # f64 [d, k]: top-k eigenvectors of the shrunk covariance
    weights: np.ndarray  # f64 [k]: 1/variance_i - residual
    residual: float  # 1/rest: inverse variance of every direction outside the basis (0: none)
    threshold: float  # distance at the fitted rate (nan until fitted)

    @property
    def width(self) -> int:
        return int(self.means.shape[1])

    def distances(self, values: np.ndarray, chunk: int = 256) -> np.ndarray:
        """[B] distances of [B, d] values: d2 = r'Pr with r = x - mean, P = the stored
        precision, from the differences themselves (the reference form; serving runs the
        same sum expanded, `_Stacked`)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1, self.width)
        parts = []
        for start in range(0, len(x), chunk):
            r = x[start : start + chunk, None, :] - self.means[None]
            z = r @ self.basis
            d2 = self.residual * (r * r).sum(axis=2) + (z * z) @ self.weights
            parts.append(np.sqrt(np.maximum(d2.min(axis=1), 0.0)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def with_threshold(self, threshold: float) -> PartModel:
        return PartModel(self.means, self.basis, self.weights, self.residual, float(threshold))


class _Stacked:
    """Every part's distance in one pass (what serving runs): the parts' values side by side
    as x, then one product x @ A gives each part's basis coordinates u and its linear terms per
    class mean, and d2[part, class] = residual·|x|² + Σ w·u² + linear + constant, which is
    PartModel.distances expanded. A handful of numpy calls for the whole batch, whatever the
    number of parts (the per-part form costs ~4x more at batch 1)."""

    def __init__(self, parts: list[PartModel]) -> None:
        classes = {m.means.shape[0] for m in parts}
        if len(classes) != 1:
            raise DomainModelError(f"parts disagree on the number of class means: {classes}")
        self.classes = classes.pop()
        widths = [m.width for m in parts]
        ranks = [m.basis.shape[1] for m in parts]
        total, rank = sum(widths), sum(ranks)
        n, c = len(parts), self.classes
        self.offset = np.concatenate([m.means.mean(axis=0) for m in parts])
        self.project = np.zeros((total, rank + n * c))
        self.quadratic = np.zeros((rank, n))
        self.squares = np.zeros((total, n))
        self.constant = np.zeros((n, c))
        self.thresholds = np.asarray([m.threshold for m in parts])
        row = col = 0
        for i, m in enumerate(parts):
            means = m.means - m.means.mean(axis=0)  # values are centred by `offset` first
            proj = means @ m.basis
            rows, cols = slice(row, row + m.width), slice(col, col + ranks[i])
            self.project[rows, cols] = m.basis
            linear = m.residual * means.T + m.basis @ (m.weights[:, None] * proj.T)
            self.project[rows, rank + i * c : rank + (i + 1) * c] = -2.0 * linear
            self.quadratic[cols, i] = m.weights
            self.squares[rows, i] = m.residual
            self.constant[i] = m.residual * (means * means).sum(axis=1) + (proj * proj) @ m.weights
            row, col = row + m.width, col + ranks[i]
        self.rank = rank

    def scores(self, x: np.ndarray) -> np.ndarray:
        """[B, parts] distance / threshold from [B, total width] values (float64 throughout:
        a direction of tiny variance has a huge weight, so rounding in u would be amplified)."""
        x = x - self.offset
        y = x @ self.project
        u = y[:, : self.rank]
        d2 = (u * u) @ self.quadratic + (x * x) @ self.squares
        d2 = d2[:, :, None] + y[:, self.rank :].reshape(len(x), -1, self.classes) + self.constant
        return np.sqrt(np.maximum(d2.min(axis=2), 0.0)) / self.thresholds


@dataclass(frozen=True)
class DomainModel:
    """Both sides' parts, as stored in a bundle's `domain.npz`."""

    parts: dict[tuple[str, str], PartModel]  # (side, part) → its check
    method: str = DOMAIN_METHOD
    version: int = DOMAIN_VERSION
    _stacked: _Stacked = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stacked", _Stacked(list(self.parts.values())))

    def widths(self) -> dict[str, int]:
        """Graph output name → the width the domain file expects."""
        return {part_output(s, p): m.width for (s, p), m in self.parts.items()}

    def scores(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """side → [B] scores (largest part distance / threshold), from graph output name →
        [B, d] values."""
        names = [part_output(side, part) for side, part in self.parts]
        return self.scores_side_by_side(np.concatenate([values[n] for n in names], axis=1))

    def scores_side_by_side(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """`scores` from [B, total width] values: each part's, in the file's part order."""
        per_part = self._stacked.scores(np.asarray(values, dtype=np.float64))
        result: dict[str, np.ndarray] = {}
        for i, (side, _) in enumerate(self.parts):
            score = per_part[:, i]
            result[side] = score if side not in result else np.maximum(result[side], score)
        return result

    def with_thresholds(self, thresholds: Mapping[tuple[str, str], float]) -> DomainModel:
        parts = {key: m.with_threshold(thresholds[key]) for key, m in self.parts.items()}
        return DomainModel(parts, self.method, self.version)

    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "method": np.array(self.method),
            "version": np.array(self.version),
        }
        for (side, part), model in self.parts.items():
            for name in _FIELDS:
                value = np.asarray(getattr(model, name), dtype=np.float32)
                arrays[f"{side}_{part}_{name}"] = value
        with open(path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # uncompressed

    @classmethod
    def load(cls, path: str | Path) -> DomainModel:
        """Read a domain file (no pickles); DomainModelError when it is not method v1."""
        name = Path(path).name
        try:
            with np.load(path, allow_pickle=False) as data:
                method, version = str(data["method"]), int(data["version"])
                if (method, version) != (DOMAIN_METHOD, DOMAIN_VERSION):
                    raise DomainModelError(
                        f"{name}: method {method!r} v{version}; this service scores "
                        f"{DOMAIN_METHOD!r} v{DOMAIN_VERSION}"
                    )
                parts = {(s, p): _part(data, s, p) for s in SIDES for p in PARTS}
        except DomainModelError:
            raise
        except (KeyError, OSError, ValueError) as exc:
            raise DomainModelError(f"{name} is not a domain file: {exc}") from None
        return cls(parts, method, version)


def _part(data: Mapping[str, np.ndarray], side: str, part: str) -> PartModel:
    values = {n: np.asarray(data[f"{side}_{part}_{n}"], dtype=np.float64) for n in _FIELDS}
    model = PartModel(
        values["means"],
        values["basis"],
        values["weights"],
        float(values["residual"]),
        float(values["threshold"]),
    )
    d, k = model.basis.shape
    if model.means.ndim != 2 or model.means.shape[1] != d or model.weights.shape != (k,):
        raise DomainModelError(f"{side} {part}: inconsistent shapes")
    if not (np.isfinite(model.threshold) and model.threshold > 0):
        raise DomainModelError(f"{side} {part}: threshold {model.threshold} is not positive")
    return model
