"""`energy_aware_adaptive`: per-sample routing between image-only, text-only and full fusion
(docs/spec.md §4.8), made deterministic at inference by argmax routing."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from models.fusion.base import (
    FusionModule,
    concat,
    gate_weights,
    mean_self_attention,
    routed_weights,
    select_by_route,
    stack_tokens,
)


class EnergyAwareAdaptiveFusion(FusionModule):
    """p = softmax(router([v; t])); route k: 0 → v, 1 → t,
    2 → FFN(LN(g ⊙ v + (1 − g) ⊙ t + mean_tokens(MHA(X, X, X)))) with g = gate([v; t]).

    Routing: sampled from p in training (as the research), **argmax in eval** (the research also
    sampled at inference, making it non-deterministic). The research's energy penalty was
    computed and discarded and its progressive modality dropout never triggered; neither changes
    the output, so neither is reproduced. The router gets no gradient (as in the research).

    Modality weights: the routing decision — (1, 0) image-only, (0, 1) text-only, and for the
    full branch the gate averaged over D, (mean g, 1 − mean g): the explicit image/text mixing
    ratio (the MHA term is a symmetric residual over both tokens).
    """

    has_modality_weights: ClassVar[bool] = True
    uses_heads: ClassVar[bool] = True

    # Research cost model (mJ); kept as documentation of the routes, not used in the math.
    cost_vision_only: ClassVar[float] = 3.2
    cost_text_only: ClassVar[float] = 4.1
    cost_full: ClassVar[float] = 9.8

    def __init__(
        self, dim: int = 512, heads: int = 8, dropout: float = 0.1, energy_budget_mJ: float = 8.0
    ) -> None:
        super().__init__()
        self.energy_budget_mJ = energy_budget_mJ
        self.router = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 3))
        self.gate = nn.Sequential(nn.Linear(2 * dim, dim), nn.Sigmoid())
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )
        self.lambda_energy = nn.Parameter(torch.tensor(0.01))

    @classmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> EnergyAwareAdaptiveFusion:
        return cls(
            dim,
            heads=heads,
            dropout=float(params.get("dropout", 0.1)),
            energy_budget_mJ=float(params.get("energy_budget_mJ", 8.0)),
        )

    def route(self, vt: Tensor) -> Tensor:
        """(B,) route index: sampled in training, argmax in eval."""
        logits = self.router(vt)
        if self.training:
            return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)
        return logits.argmax(dim=-1)  # argmax of softmax == argmax of logits

    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        vt = concat(v, t)
        route = self.route(vt)
        g = self.gate(vt)
        f = g * v + (1 - g) * t + mean_self_attention(self.cross_attn, stack_tokens(v, t))
        full = self.ffn(self.norm(f))
        out = select_by_route(route, v, t, full)
        return out, routed_weights(route, gate_weights(g))
