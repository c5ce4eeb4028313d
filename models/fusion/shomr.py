"""`shomr` ("Soft-Hard Modality Routing", docs/spec.md §4.9)."""

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


class SHoMRFusion(FusionModule):
    """Confidence c = softmax(conf_net([v; t])) = (w_v, w_t); a sample is "hard" iff max(c) > 0.6.

    Soft samples: s = LN1(w_v v + w_t t + a), out = s + FFN(s), a = mean_tokens(MHA(X, X, X)).
    Hard samples route by r = softmax(router([v; t]) / T) — sampled in training, argmax in eval:
    0 → proj_single(v); 1 → proj_single(t); 2 → b = LN2(g ⊙ v + (1 − g) ⊙ t + a), b + FFN(b).
    All branches are computed for all samples and selected per sample (torch.where), which keeps
    the eval graph free of data-dependent control flow.

    Modality weights: soft samples → the confidence (w_v, w_t) that weights v and t; hard samples
    → (1, 0) / (0, 1) for the single-modality routes and the D-averaged gate (mean g, 1 − mean g)
    for the gated route.
    """

    has_modality_weights: ClassVar[bool] = True
    uses_heads: ClassVar[bool] = True

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dropout: float = 0.1,
        confidence_threshold: float = 0.6,
        routing_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if routing_temperature <= 0:
            raise ValueError(f"routing_temperature must be > 0, got {routing_temperature}")
        self.confidence_threshold = confidence_threshold
        self.routing_temperature = routing_temperature
        self.conf_net = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, 2)
        )
        self.router = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, 3)
        )
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.gate = nn.Sequential(nn.Linear(2 * dim, dim), nn.Sigmoid())
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * dim, dim),
            nn.Dropout(dropout),
        )
        self.proj_single = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout))

    @classmethod
    def from_options(cls, dim: int, heads: int, layers: int, params: dict[str, Any]) -> SHoMRFusion:
        return cls(
            dim,
            heads=heads,
            dropout=float(params.get("dropout", 0.1)),
            confidence_threshold=float(params.get("confidence_threshold", 0.6)),
            routing_temperature=float(params.get("routing_temperature", 1.0)),
        )

    def route(self, vt: Tensor) -> Tensor:
        """(B,) hard-route index: sampled in training, argmax in eval."""
        logits = self.router(vt) / self.routing_temperature
        if self.training:
            return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)
        return logits.argmax(dim=-1)

    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        vt = concat(v, t)
        conf = torch.softmax(self.conf_net(vt), dim=-1)
        hard = conf.max(dim=-1).values > self.confidence_threshold
        a = mean_self_attention(self.cross_attn, stack_tokens(v, t))

        s = self.norm1(conf[:, :1] * v + conf[:, 1:] * t + a)
        soft_out = s + self.ffn(s)

        route = self.route(vt)
        g = self.gate(vt)
        b = self.norm2(g * v + (1 - g) * t + a)
        hard_out = select_by_route(route, self.proj_single(v), self.proj_single(t), b + self.ffn(b))
        hard_w = routed_weights(route, gate_weights(g))

        is_hard = hard.unsqueeze(-1)
        return torch.where(is_hard, hard_out, soft_out), torch.where(is_hard, hard_w, conf)
