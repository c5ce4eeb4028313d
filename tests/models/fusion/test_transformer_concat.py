"""transformer_concat against NumPy (docs/spec.md §4.5): post-norm encoder, mean over tokens."""

from __future__ import annotations

import numpy as np
import torch

from models.fusion import TransformerConcatFusion
from tests.models.fusion.reference import gelu, layer_norm, linear, mha, stack


def reference(fusion: TransformerConcatFusion, v: np.ndarray, t: np.ndarray, heads: int):
    x = stack(v, t)
    w = None
    for i in range(len(fusion.transformer.layers)):
        p = f"transformer.layers.{i}"
        attn, w = mha(fusion, f"{p}.self_attn", x, x, heads)
        x = layer_norm(fusion, f"{p}.norm1", x + attn)
        ff = linear(fusion, f"{p}.linear2", gelu(linear(fusion, f"{p}.linear1", x)))
        x = layer_norm(fusion, f"{p}.norm2", x + ff)
    assert w is not None
    return x.mean(axis=1), w.mean(axis=1)


def test_matches_hand_computation_including_last_layer_weights() -> None:
    torch.manual_seed(0)
    fusion = TransformerConcatFusion(16, heads=4, layers=2).eval()
    v, t = torch.randn(3, 16), torch.randn(3, 16)
    out, weights = fusion.forward_with_weights(v, t)
    expected, expected_w = reference(fusion, v.double().numpy(), t.double().numpy(), heads=4)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.detach().numpy(), expected_w, rtol=1e-4, atol=1e-6)


def test_equals_torch_encoder_forward() -> None:
    """Our explicit layer loop is the stock nn.TransformerEncoder math (research module)."""
    torch.manual_seed(0)
    fusion = TransformerConcatFusion(16, heads=4, layers=3).eval()
    v, t = torch.randn(5, 16), torch.randn(5, 16)
    with torch.no_grad():
        stock = fusion.transformer(torch.stack([v, t], dim=1)).mean(dim=1)
        torch.testing.assert_close(fusion(v, t), stock, atol=1e-5, rtol=1e-5)


def test_modality_token_never_affects_the_output() -> None:
    torch.manual_seed(0)
    fusion = TransformerConcatFusion(16, heads=4, layers=1).eval()
    v, t = torch.randn(2, 16), torch.randn(2, 16)
    before = fusion(v, t)
    with torch.no_grad():
        fusion.modality_token.normal_(mean=5.0)
    torch.testing.assert_close(fusion(v, t), before)
