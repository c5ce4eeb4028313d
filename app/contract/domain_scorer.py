"""The domain check in its scoring form: every part of a batch in one vectorised pass, from
arrays the graph's own scoring nodes use too (`models.export.domain_graph`).

Why a separate form from `PartModel.distances`: at batch 1 a dozen numpy calls per part cost
more than the arithmetic. Here the narrow parts share one float32 product (their centred values
side by side, times a block-diagonal [basis | -2·linear term per class] matrix) and a wide one
has its own; the squares, class minimum and side maximum run once for all parts. Serving reads
the graph's scores for bundles exported with them (`DomainSpec.scores_in_graph`) and runs this
form for older ones; verify compares the two.

Per part and class c, with r = x - mean_c and P = basis·diag(weights)·basisᵀ + residual·I:
d2_c = r'Pr = Σ w·u² + residual·|x|² + linear_c·x + constant_c, u = basisᵀx (x centred on
the class means' mean first, so the float32 product's rounding stays far below the fitted
spreads), and every term divided by the part's threshold².
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.contract.domain import PartModel


# Parts at most this wide share one block-diagonal product (input statistics, the early
# block, a small text embedding); a wider one (a 1,280-wide image embedding) has its own, so no
# large block of zeros is multiplied.
SHARED_WIDTH = 128


@dataclass(frozen=True)
class PartGroup:
    """Parts scored by one product: their centred values side by side, times a block-diagonal
    [Σd, Σ(k + C)] matrix."""

    outputs: list[str]  # graph outputs, concatenated in this order
    center: np.ndarray  # f32 [Σd]
    project: np.ndarray  # f32 [Σd, Σ(k + C)]
    rest: np.ndarray  # f64 [Σd, parts]: each low-rank part's 1/rest variance in its column


_Entry = tuple[str, np.ndarray, np.ndarray]  # graph output, center f64 [d], project f64 [d, m]


def _group(parts: Sequence[tuple[_Entry, int, float]], count: int) -> PartGroup:
    """((output, center f64 [d], project f64 [d, m]), part index, rest) per part → one group
    of a check with `count` parts."""
    widths = [e[1].size for e, _, _ in parts]
    project = np.zeros((sum(widths), sum(e[2].shape[1] for e, _, _ in parts)))
    rest = np.zeros((sum(widths), count))
    row = col = 0
    for ((_, _, proj), index, residual), width in zip(parts, widths, strict=True):
        project[row : row + width, col : col + proj.shape[1]] = proj
        rest[row : row + width, index] = residual
        row, col = row + width, col + proj.shape[1]
    center = np.concatenate([e[1] for e, _, _ in parts]).astype(np.float32)
    return PartGroup([e[0] for e, _, _ in parts], center, project.astype(np.float32), rest)


@dataclass(frozen=True)
class ScoringPlan:
    """The precomputed arrays both scoring forms read: numpy here, and the nodes export appends
    to the graph (`models.export.domain_graph`), so the two cannot drift. Every part's terms
    are divided by its threshold², so the class minimum is (distance / threshold)² already."""

    groups: list[PartGroup]
    weights: np.ndarray  # f64 [Σ(k + C), parts]: each part's weighted squares, summed
    linear: np.ndarray  # intp [parts, C]: where each part's linear terms sit in y
    constants: np.ndarray  # f64 [parts, C]
    sides: dict[str, slice]  # side → its parts' columns (side by side, `PART_KEYS` order)
    with_rest: list[int]  # the groups holding a low-rank part (whose squared norm is needed too)


def _scaled(m: PartModel, factor: float) -> PartModel:
    """The part with its squared distance multiplied by `factor` (its precision scaled)."""
    return dataclasses.replace(m, weights=m.weights * factor, residual=m.residual * factor)


class DomainScorer:
    """All parts of a fitted check, precomputed once at load."""

    def __init__(self, parts: Sequence[tuple[str, str, PartModel]]) -> None:
        """`parts`: (side, graph output, fitted part) in graph output order; every part has
        the same class count (task 1's classes)."""
        entries: list[tuple[_Entry, int, float]] = []
        scaled, constants = [], []
        for index, (_, output, m) in enumerate(parts):
            m = _scaled(m, 1.0 / m.threshold**2)  # d2 / threshold²
            center = m.means.mean(axis=0)
            means = m.means - center
            proj = means @ m.basis
            linear = m.residual * means.T + m.basis @ (m.weights[:, None] * proj.T)
            project = np.concatenate([m.basis, -2.0 * linear], axis=1)
            entries.append(((output, center, project), index, m.residual))
            scaled.append(m)
            constants.append(m.residual * (means * means).sum(axis=1) + (proj * proj) @ m.weights)
        shared = [e for e in entries if e[0][1].size <= SHARED_WIDTH]
        alone = [e for e in entries if e[0][1].size > SHARED_WIDTH]
        groups = ([_group(shared, len(parts))] if shared else []) + [
            _group([e], len(parts)) for e in alone
        ]
        # columns of y (the groups' products side by side): per part, k squares then C linear
        order = [index for _, index, _ in shared + alone]
        classes = len(constants[0])
        weights = np.zeros((sum(len(scaled[i].weights) + classes for i in order), len(parts)))
        linear_columns = np.zeros((len(parts), classes), dtype=np.intp)
        col = 0
        for i in order:
            k = len(scaled[i].weights)
            weights[col : col + k, i] = scaled[i].weights
            linear_columns[i] = np.arange(col + k, col + k + classes)
            col += k + classes
        sides = [side for side, _, _ in parts]
        self.plan = ScoringPlan(
            groups=groups,
            weights=weights,
            linear=linear_columns,
            constants=np.stack(constants),
            sides={
                s: slice(sides.index(s), len(sides) - sides[::-1].index(s))
                for s in dict.fromkeys(sides)
            },
            with_rest=[i for i, g in enumerate(groups) if g.rest.any()],
        )

    def scores(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """side → [B] largest part distance / threshold, from graph output → [B, d]."""
        plan = self.plan
        products, centred = [], []
        for group in plan.groups:
            stacked = [np.asarray(values[o], dtype=np.float32) for o in group.outputs]
            x = (
                stacked[0] if len(stacked) == 1 else np.concatenate(stacked, axis=1)
            ) - group.center
            products.append(x @ group.project)
            centred.append(x)
        y = (products[0] if len(products) == 1 else np.concatenate(products, axis=1)).astype(
            np.float64
        )
        quad = (y * y) @ plan.weights  # [B, parts]
        for i in plan.with_rest:  # rest·|x|² cancels against the linear terms: float64
            x64 = centred[i].astype(np.float64)
            quad += (x64 * x64) @ plan.groups[i].rest
        d2 = y[:, plan.linear] + plan.constants + quad[:, :, None]  # [B, parts, C], / threshold²
        nearest = np.maximum(d2.min(axis=2), 0.0)
        return {side: np.sqrt(nearest[:, cols].max(axis=1)) for side, cols in plan.sides.items()}
