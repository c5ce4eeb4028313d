"""cross_attention against an independent NumPy computation of docs/spec.md §4.3."""

from __future__ import annotations

import numpy as np
import torch

from models.fusion import CrossAttentionFusion
from tests.models.fusion.reference import gelu, layer_norm, linear, mha, stack


def test_matches_hand_computation_including_weights() -> None:
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(16, heads=4).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for p in fusion.parameters():
            if p.dim() == 1:
                p.normal_()
    v, t = torch.randn(3, 16), torch.randn(3, 16)
    out, weights = fusion.forward_with_weights(v, t)

    vn, tn = v.double().numpy(), t.double().numpy()
    q = layer_norm(fusion, "norm1", (vn + tn) / 2)[:, None, :]
    z, w = mha(fusion, "cross_attn", q, stack(vn, tn), heads=4)
    h = gelu(linear(fusion, "ffn.0", layer_norm(fusion, "norm2", z)))
    expected = (z + linear(fusion, "ffn.2", h))[:, 0]

    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.detach().numpy(), w[:, 0], rtol=1e-4, atol=1e-6)


def test_weights_follow_the_attention_scores() -> None:
    """Identity query and 1e4-scaled key projections: the token most aligned with the query
    (the image token, 5·e0, vs text 0.1·e0) takes essentially all attention."""
    dim = 8
    fusion = CrossAttentionFusion(dim, heads=1).eval()
    with torch.no_grad():
        fusion.cross_attn.in_proj_weight.zero_()
        fusion.cross_attn.in_proj_bias.zero_()
        fusion.cross_attn.in_proj_weight[:dim].copy_(torch.eye(dim))
        fusion.cross_attn.in_proj_weight[dim : 2 * dim].copy_(torch.eye(dim) * 1e4)
    e0 = torch.zeros(1, dim)
    e0[0, 0] = 1.0
    _, weights = fusion.forward_with_weights(5 * e0, 0.1 * e0)
    assert weights[0, 0] > 0.999
    _, swapped = fusion.forward_with_weights(0.1 * e0, 5 * e0)
    assert swapped[0, 1] > 0.999
