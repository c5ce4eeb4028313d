"""energy_aware_adaptive against NumPy (docs/spec.md §4.8), with argmax routing at eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.fusion import EnergyAwareAdaptiveFusion
from tests.models.fusion.reference import gelu, layer_norm, linear, mha, sigmoid, stack


def force_route(fusion: EnergyAwareAdaptiveFusion, route: int) -> None:
    with torch.no_grad():
        fusion.router[2].weight.zero_()
        fusion.router[2].bias.copy_(torch.eye(3)[route] * 10)


def full_branch(fusion: EnergyAwareAdaptiveFusion, v: np.ndarray, t: np.ndarray, heads: int):
    g = sigmoid(linear(fusion, "gate.0", np.concatenate([v, t], axis=-1)))
    x = stack(v, t)
    attn, _ = mha(fusion, "cross_attn", x, x, heads)
    f = layer_norm(fusion, "norm", g * v + (1 - g) * t + attn.mean(axis=1))
    return linear(fusion, "ffn.2", gelu(linear(fusion, "ffn.0", f))), g.mean(axis=-1)


@pytest.mark.parametrize("route", [0, 1, 2])
def test_each_route_matches_hand_computation(route: int) -> None:
    torch.manual_seed(0)
    fusion = EnergyAwareAdaptiveFusion(16, heads=4).eval()
    force_route(fusion, route)
    v, t = torch.randn(3, 16), torch.randn(3, 16)
    out, weights = fusion.forward_with_weights(v, t)
    vn, tn = v.double().numpy(), t.double().numpy()
    full, g_mean = full_branch(fusion, vn, tn, heads=4)
    expected, expected_w = {
        0: (vn, np.tile([1.0, 0.0], (3, 1))),
        1: (tn, np.tile([0.0, 1.0], (3, 1))),
        2: (full, np.stack([g_mean, 1 - g_mean], axis=-1)),
    }[route]
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.detach().numpy(), expected_w, rtol=1e-4, atol=1e-6)


def test_eval_routes_by_argmax_training_samples() -> None:
    torch.manual_seed(0)
    fusion = EnergyAwareAdaptiveFusion(8, heads=2)
    with torch.no_grad():  # p = softmax([1.0, 1.1, 0.9]): argmax is text but far from certain
        fusion.router[2].weight.zero_()
        fusion.router[2].bias.copy_(torch.tensor([1.0, 1.1, 0.9]))
    vt = torch.randn(64, 16)
    assert fusion.eval().route(vt).tolist() == [1] * 64
    sampled = fusion.train().route(vt)
    assert set(sampled.tolist()) == {0, 1, 2}
