"""`film`: text conditions vision by feature-wise affine modulation (docs/spec.md §4.7)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from models.fusion.base import UnweightedFusion


class FiLMFusion(UnweightedFusion):
    """out = (W_γ t + b_γ) ⊙ v + (W_β t + b_β); γ is used as is (not 1 + γ), as in the research."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp_gamma = nn.Linear(dim, dim)
        self.mlp_beta = nn.Linear(dim, dim)

    @classmethod
    def from_options(cls, dim: int, heads: int, layers: int, params: dict[str, Any]) -> FiLMFusion:
        return cls(dim)

    def fuse(self, v: Tensor, t: Tensor) -> Tensor:
        return self.mlp_gamma(t) * v + self.mlp_beta(t)
