"""`cross_attention` (research default, docs/spec.md §4.3): a mean-token query attends {v, t}."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from models.fusion.base import FusionModule, stack_tokens


class CrossAttentionFusion(FusionModule):
    """q = LN1((v + t) / 2); z = MHA(q, X, X) over the un-normalised tokens (no residual);
    out = z + FFN(LN2(z)).

    Modality weights: the query's attention over the two tokens {v, t}, averaged over heads —
    exactly how much of z was drawn from the image vs the text token.
    """

    has_modality_weights: ClassVar[bool] = True
    uses_heads: ClassVar[bool] = True

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    @classmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> CrossAttentionFusion:
        # fusion_layers is ignored by the research factory for this fusion.
        return cls(dim, heads=heads, dropout=float(params.get("dropout", 0.1)))

    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        x = stack_tokens(v, t)
        q = self.norm1((v + t) / 2).unsqueeze(1)
        z, w = self.cross_attn(q, x, x, need_weights=True, average_attn_weights=True)
        z = z + self.ffn(self.norm2(z))
        return z.squeeze(1), w.squeeze(1)
