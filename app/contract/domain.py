"""The domain check: does an input's image (or text) look like what the model was trained on?

A classifier answers every input with some label; a wound photo sent to the MedPix model comes
back as a confident "CT, Head". So every bundle exported with data carries a fitted model of
its training inputs (`domain.npz`, covered by the manifest's sha256), and every answer says,
per side, how far the input lies from it.

Method (`mahalanobis-ledoit-wolf`, version 2). Each side (image, text) has a few parts, each
an extra graph output: `embedding_<side>`, the backbone's pre-fusion features (what the model
sees); `input_stats_<side>`, a few statistics of the input itself (image: per channel, the
log energy of the pixel and of its colour; earlier bundles hold other image statistics, which
their own graph defines; text: how common its tokens were in the training texts); and, for
backbones with a known early block (EfficientNet-Lite), `early_image`, the per-channel mean
and root mean square (earlier: standard deviation) of that block's activations (multi-layer
Mahalanobis, Lee et al. 2018: early features see texture and strokes, so noise, text
screenshots and flat images stand out where the pooled last layer and the global statistics
place them among real images). The file lists the parts it has. Per
part: class means of the training split (task 1's labels) and one Ledoit-Wolf shrunk
covariance of the class-centred values; the distance is the Mahalanobis distance to the
nearest class mean. The covariance is stored as its top `k` eigen-directions plus one
variance for all others (exact when `k` is the width; probabilistic PCA below it), so a
1,280-wide EfficientNet feature costs one [d x (k + classes)] float32 product per batch.
Each part's threshold is a quantile of its dev distances, one rate for all parts, the largest
that keeps the dev cases flagged on either side within the manifest's stated false-flag rate.
A side's score is the largest of its parts' distance / threshold: above 1 is out of domain,
for every bundle and side alike. Bundles exported since the scoring moved into the graph
(`DomainSpec.scores_in_graph`) output those scores themselves; this file's values still
define them, and verify checks that the two agree.

Numpy only: this runs in the service (torch-free), in `fusionserve verify` and at export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.contract.domain_scorer import DomainScorer, ScoringPlan

DOMAIN_FILE = "domain.npz"
DOMAIN_METHOD = "mahalanobis-ledoit-wolf"
DOMAIN_VERSION = 2
SIDES = ("image", "text")
# Every part a domain file may hold, in graph output order; a file holds a subset (`early`
# only where the image backbone has a known early block).
PART_KEYS = (
    ("image", "embedding"),
    ("image", "input_stats"),
    ("image", "early"),
    ("text", "embedding"),
    ("text", "input_stats"),
)
SCORE_KEYS = {side: f"domain_score_{side}" for side in SIDES}  # per item, added by serving
_FIELDS = ("means", "basis", "weights", "residual", "threshold")


def part_output(side: str, part: str) -> str:
    """Graph output holding one part of one side, f32[B, width]."""
    return f"{part}_{side}"


DOMAIN_OUTPUTS = tuple(part_output(side, part) for side, part in PART_KEYS)


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
        same sum expanded, `DomainScorer`)."""
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
class DomainModel:
    """Both sides' parts, as stored in a bundle's `domain.npz`."""

    parts: dict[tuple[str, str], PartModel]  # (side, part) → its check
    method: str = DOMAIN_METHOD
    version: int = DOMAIN_VERSION
    _scorer: DomainScorer = field(init=False, repr=False, compare=False)

    @property
    def plan(self) -> ScoringPlan:
        """The arrays serving scores with (for the graph form, `models.export.domain_graph`)."""
        return self._scorer.plan

    def __post_init__(self) -> None:
        parts = [(side, part_output(side, part), m) for (side, part), m in self.parts.items()]
        object.__setattr__(self, "_scorer", DomainScorer(parts))

    def widths(self) -> dict[str, int]:
        """Graph output name → the width the domain file expects."""
        return {part_output(s, p): m.width for (s, p), m in self.parts.items()}

    def scores(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """side → [B] scores (largest part distance / threshold), from graph output name →
        [B, d] values (`DomainScorer`: all parts in one pass)."""
        return self._scorer.scores(values)

    def with_thresholds(self, thresholds: Mapping[tuple[str, str], float]) -> DomainModel:
        parts = {key: m.with_threshold(thresholds[key]) for key, m in self.parts.items()}
        return DomainModel(parts, self.method, self.version)

    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "method": np.array(self.method),
            "version": np.array(self.version),
            "parts": np.array([f"{side}/{part}" for side, part in self.parts]),
        }
        for (side, part), model in self.parts.items():
            for name in _FIELDS:
                value = np.asarray(getattr(model, name), dtype=np.float32)
                arrays[f"{side}_{part}_{name}"] = value
        with open(path, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # uncompressed

    @classmethod
    def load(cls, path: str | Path) -> DomainModel:
        """Read a domain file (no pickles); DomainModelError when it is not this method and
        version or lists a part this code does not know."""
        name = Path(path).name
        try:
            with np.load(path, allow_pickle=False) as data:
                method, version = str(data["method"]), int(data["version"])
                if (method, version) != (DOMAIN_METHOD, DOMAIN_VERSION):
                    raise DomainModelError(
                        f"{name}: method {method!r} v{version}; this service scores "
                        f"{DOMAIN_METHOD!r} v{DOMAIN_VERSION}"
                    )
                parts = {key: _part(data, *key) for key in _listed_parts(data)}
        except DomainModelError:
            raise
        except (KeyError, OSError, ValueError) as exc:
            raise DomainModelError(f"{name} is not a domain file: {exc}") from None
        return cls(parts, method, version)


def _key(name: str) -> tuple[str, str]:
    side, _, part = name.partition("/")
    return side, part


def _listed_parts(data: Mapping[str, np.ndarray]) -> list[tuple[str, str]]:
    """The file's parts in graph output order; each side needs at least one."""
    listed = [_key(str(name)) for name in np.atleast_1d(data["parts"])]
    unknown = [key for key in listed if key not in PART_KEYS]
    if unknown or len(set(listed)) != len(listed):
        raise DomainModelError(f"unknown or repeated parts {listed}")
    if {side for side, _ in listed} != set(SIDES):
        raise DomainModelError(f"parts {listed} do not cover both sides")
    return [key for key in PART_KEYS if key in listed]


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
