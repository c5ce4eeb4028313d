"""The domain check as serving scores it: every part of a batch in one vectorised pass.

Why a separate form: at batch 1 a dozen numpy calls per part cost more in Python overhead than
the arithmetic, and the products read their matrices from memory, not cache, right after a
graph run. Here the full-rank parts share one float32 product (their centred values side by
side, times a block-diagonal [basis | -2·linear term per class] matrix) and each low-rank part
has its own; the squares, class minimum, thresholds and side maximum run once for all parts
(measured here, five parts, k = 64: 52 µs at batch 1 against 226 µs for the previous per-part
form at k = 512).

Per part and class c, with r = x - mean_c and P = basis·diag(weights)·basisᵀ + residual·I:
d2_c = r'Pr = Σ w·u² + residual·|x|² + linear_c·x + constant_c, u = basisᵀx (x centred on
the class means' mean first, so the float32 product's rounding stays far below the fitted
spreads: served scores are within 1e-6 of the float64 reference on the shipped bundles).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.contract.domain import PartModel


@dataclass(frozen=True)
class PartGroup:
    """Parts scored by one product: their centred values side by side, times a block-diagonal
    [Σd, Σ(k + C)] matrix. Parts with a rest variance each form their own group (their
    squared norm is needed too); all full-rank parts share one."""

    outputs: list[str]  # graph outputs, concatenated in this order
    center: np.ndarray  # f32 [Σd]
    project: np.ndarray  # f32 [Σd, Σ(k + C)]
    residual: float  # the part's 1/rest variance (one part); 0 for a shared group


_Entry = tuple[str, np.ndarray, np.ndarray]  # graph output, center f64 [d], project f64 [d, m]


def _group(parts: Sequence[_Entry], residual: float) -> PartGroup:
    """(output, center f64 [d], project f64 [d, m]) per part → one group."""
    project = np.zeros((sum(c.size for _, c, _ in parts), sum(p.shape[1] for *_, p in parts)))
    row = col = 0
    for _, center, proj in parts:
        project[row : row + center.size, col : col + proj.shape[1]] = proj
        row, col = row + center.size, col + proj.shape[1]
    center = np.concatenate([c for _, c, _ in parts]).astype(np.float32)
    return PartGroup([o for o, _, _ in parts], center, project.astype(np.float32), residual)


@dataclass(frozen=True)
class ScoringPlan:
    """The precomputed arrays both scoring forms read: numpy here, and the nodes export appends
    to the graph (`models.export.domain_graph`), so the two cannot drift."""

    groups: list[PartGroup]
    weights: np.ndarray  # f64 [Σ(k + C), parts]: each part's weighted squares, summed
    linear: np.ndarray  # intp [parts, C]: where each part's linear terms sit in y
    constants: np.ndarray  # f64 [parts, C]
    wide: list[int]  # parts index of each wide group, in group order
    thresholds: np.ndarray  # f64 [parts] (already folded into the arrays above)
    sides: dict[str, slice]  # side → its parts' columns (side by side, `PART_KEYS` order)


def _scaled(m: PartModel, factor: float) -> PartModel:
    """The part with its squared distance multiplied by `factor` (its precision scaled)."""
    return dataclasses.replace(m, weights=m.weights * factor, residual=m.residual * factor)


class DomainScorer:
    """All parts of a fitted check, precomputed once at load."""

    def __init__(self, parts: Sequence[tuple[str, str, PartModel]]) -> None:
        """`parts`: (side, graph output, fitted part) in graph output order; every part has
        the same class count (task 1's classes)."""
        full: list[tuple[_Entry, PartModel]] = []
        wide: list[tuple[_Entry, PartModel]] = []
        constants = []
        for _, output, m in parts:
            # each part's terms are divided by its threshold², so the minimum over classes is
            # already (distance / threshold)² and one square root per side ends the scoring
            m = _scaled(m, 1.0 / m.threshold**2)
            center = m.means.mean(axis=0)
            means = m.means - center
            proj = means @ m.basis
            linear = m.residual * means.T + m.basis @ (m.weights[:, None] * proj.T)
            entry = (output, center, np.concatenate([m.basis, -2.0 * linear], axis=1))
            (wide if m.residual else full).append((entry, m))
            constants.append(m.residual * (means * means).sum(axis=1) + (proj * proj) @ m.weights)
        # columns of y (the groups' products side by side): per part, k squares then C linear
        ordered = full + wide
        groups = ([_group([e for e, _ in full], 0.0)] if full else []) + [
            _group([e], m.residual) for e, m in wide
        ]
        by_output = {output: i for i, (_, output, _) in enumerate(parts)}
        order = [by_output[e[0]] for e, _ in ordered]
        classes = len(constants[0])
        weights = np.zeros((sum(len(m.weights) + classes for _, m in ordered), len(parts)))
        linear_columns = np.zeros((len(parts), classes), dtype=np.intp)
        col = 0
        for (_, m), i in zip(ordered, order, strict=True):
            k = len(m.weights)
            weights[col : col + k, i] = m.weights
            linear_columns[i] = np.arange(col + k, col + k + classes)
            col += k + classes
        sides = [side for side, _, _ in parts]
        self.plan = ScoringPlan(
            groups=groups,
            weights=weights,
            linear=linear_columns,
            constants=np.stack(constants),
            wide=order[len(full) :],
            thresholds=np.asarray([m.threshold for *_, m in parts]),
            sides={
                s: slice(sides.index(s), len(sides) - sides[::-1].index(s))
                for s in dict.fromkeys(sides)
            },
        )

    def scores(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """side → [B] largest part distance / threshold, from graph output → [B, d]."""
        plan = self.plan
        products, norms = [], []
        for group in plan.groups:
            stacked = [np.asarray(values[o], dtype=np.float32) for o in group.outputs]
            x = (
                stacked[0] if len(stacked) == 1 else np.concatenate(stacked, axis=1)
            ) - group.center
            products.append(x @ group.project)
            if group.residual:
                wide = x.astype(np.float64)  # the squared norm cancels: float64, as in the graph
                norms.append(group.residual * np.einsum("bd,bd->b", wide, wide))
        y = (products[0] if len(products) == 1 else np.concatenate(products, axis=1)).astype(
            np.float64
        )
        quad = (y * y) @ plan.weights  # [B, parts]
        for i, norm in zip(plan.wide, norms, strict=True):
            quad[:, i] += norm
        d2 = y[:, plan.linear] + plan.constants + quad[:, :, None]  # [B, parts, C], / threshold²
        nearest = np.maximum(d2.min(axis=2), 0.0)
        return {side: np.sqrt(nearest[:, cols].max(axis=1)) for side, cols in plan.sides.items()}
