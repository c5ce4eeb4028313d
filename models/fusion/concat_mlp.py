"""`concat_mlp`: MLP over [v; t] (docs/spec.md §4.2)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from models.fusion.base import UnweightedFusion, concat


class ConcatMLPFusion(UnweightedFusion):
    """(layers−1) × [Linear, GELU, Dropout] then Linear → D, so the Linears sit at mlp.0, 3, 6, …

    With layers=1 (research students) it is a single Linear(2D → D) at ``mlp.0``.
    """

    def __init__(self, dim: int, hidden_mult: int = 2, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        if layers < 1:
            raise ValueError(f"concat_mlp needs layers >= 1, got {layers}")
        hidden = hidden_mult * dim
        blocks: list[nn.Module] = []
        width = 2 * dim
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*blocks)

    @classmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> ConcatMLPFusion:
        return cls(
            dim,
            hidden_mult=int(params.get("hidden_mult", 2)),
            layers=layers,
            dropout=float(params.get("dropout", 0.1)),
        )

    def fuse(self, v: Tensor, t: Tensor) -> Tensor:
        return self.mlp(concat(v, t))
