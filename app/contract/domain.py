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
        same sum expanded, `_Block`)."""
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


@dataclass(frozen=True)
class _Block:
    """One part as serving scores it: d2[class] = Σ w·u² + linear[class] + constant[class]
    (+ residual·|x|² for a low-rank part), with u and the linear terms from one product."""

    center32: np.ndarray  # f32 [d]: the class means' mean (values are centred first)
    project: np.ndarray  # f32 [d, k + C]: the basis, then -2·(the linear term) per class
    weights: np.ndarray  # f64 [k]
    residual: float
    constant: np.ndarray  # f64 [C]
    threshold: float

    @classmethod
    def of(cls, m: PartModel) -> _Block:
        center = m.means.mean(axis=0)
        means = m.means - center
        proj = means @ m.basis
        linear = m.residual * means.T + m.basis @ (m.weights[:, None] * proj.T)
        project = np.concatenate([m.basis, -2.0 * linear], axis=1).astype(np.float32)
        constant = m.residual * (means * means).sum(axis=1) + (proj * proj) @ m.weights
        center32 = center.astype(np.float32)
        return cls(center32, project, m.weights, m.residual, constant, m.threshold)

    def scores(self, values: np.ndarray) -> np.ndarray:
        """[B] distance / threshold. The product runs in float32, as the graph's outputs come:
        after a graph run the matrix is read from memory, not cache, so its bytes are most of
        the cost; centring keeps the rounding far below the fitted spreads (served scores are
        within 4e-7 of PartModel.distances on the shipped bundles)."""
        x = np.asarray(values, dtype=np.float32) - self.center32
        k = len(self.weights)
        y = (x @ self.project).astype(np.float64)
        u = y[:, :k]
        d2 = ((u * u) @ self.weights)[:, None] + y[:, k:] + self.constant
        if self.residual:
            d2 += self.residual * (x.astype(np.float64) ** 2).sum(axis=1)[:, None]
        return np.sqrt(np.maximum(d2.min(axis=1), 0.0)) / self.threshold


@dataclass(frozen=True)
class DomainModel:
    """Both sides' parts, as stored in a bundle's `domain.npz`."""

    parts: dict[tuple[str, str], PartModel]  # (side, part) → its check
    method: str = DOMAIN_METHOD
    version: int = DOMAIN_VERSION
    _blocks: list[_Block] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_blocks", [_Block.of(m) for m in self.parts.values()])

    def widths(self) -> dict[str, int]:
        """Graph output name → the width the domain file expects."""
        return {part_output(s, p): m.width for (s, p), m in self.parts.items()}

    def scores(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """side → [B] scores (largest part distance / threshold), from graph output name →
        [B, d] values."""
        result: dict[str, np.ndarray] = {}
        for (side, part), block in zip(self.parts, self._blocks, strict=True):
            score = block.scores(values[part_output(side, part)])
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
