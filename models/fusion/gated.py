"""`gated`: per-dimension sigmoid gate between the two modalities (docs/spec.md §4.4)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from models.fusion.base import UnweightedFusion, concat


class GatedFusion(UnweightedFusion):
    """g = σ(W [v; t] + b); out = g ⊙ v + (1 − g) ⊙ t."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(2 * dim, dim), nn.Sigmoid())

    @classmethod
    def from_options(cls, dim: int, heads: int, layers: int, params: dict[str, Any]) -> GatedFusion:
        return cls(dim)

    def fuse(self, v: Tensor, t: Tensor) -> Tensor:
        g = self.gate(concat(v, t))
        return g * v + (1 - g) * t
