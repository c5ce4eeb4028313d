"""`transformer_concat` (docs/spec.md §4.5): post-norm Transformer encoder over the two tokens."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from models.fusion.base import FusionModule, stack_tokens


class TransformerConcatFusion(FusionModule):
    """out = mean over tokens of Encoder([v, t]) (PyTorch-default post-norm layers, FF 4D, GELU).

    ``modality_token`` [1, 2, D] is kept only so research state_dicts load strictly: the research
    forward overwrites both of its rows with v and t, so it never affects the output.

    The layers are run by :func:`_post_norm_layer` (same math and parameters as
    ``nn.TransformerEncoderLayer``) rather than by the layer's own forward, so that the
    attention weights can be read out and no fused "fast path" kernel ends up in an ONNX graph.

    Modality weights: the LAST layer's self-attention (averaged over heads) averaged over its two
    query tokens — the share of the final token mixture drawn from the image vs the text token.
    """

    has_modality_weights: ClassVar[bool] = True
    uses_heads: ClassVar[bool] = True

    def __init__(self, dim: int, heads: int = 8, layers: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"transformer_concat needs layers >= 1, got {layers}")
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.modality_token = nn.Parameter(torch.randn(1, 2, dim))

    @classmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> TransformerConcatFusion:
        return cls(dim, heads=heads, layers=layers, dropout=float(params.get("dropout", 0.1)))

    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        x = stack_tokens(v, t)
        weights = x.new_zeros(x.shape[0], 2, 2)
        for layer in self.transformer.layers:
            x, weights = _post_norm_layer(layer, x)
        return x.mean(dim=1), weights.mean(dim=1)


def _post_norm_layer(layer: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """One ``nn.TransformerEncoderLayer`` (norm_first=False) step, also returning its
    head-averaged attention weights (B, queries, keys)."""
    assert isinstance(layer, nn.TransformerEncoderLayer) and not layer.norm_first
    attn, w = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=True)
    x = layer.norm1(x + layer.dropout1(attn))
    ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
    x = layer.norm2(x + layer.dropout2(ff))
    return x, w
