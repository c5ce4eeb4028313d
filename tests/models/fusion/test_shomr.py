"""shomr against NumPy (docs/spec.md §4.9): soft vs hard samples, argmax routing at eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.fusion import SHoMRFusion
from tests.models.fusion.reference import gelu, layer_norm, linear, mha, sigmoid, softmax, stack


def set_logits(seq: torch.nn.Sequential, bias: list[float]) -> None:
    with torch.no_grad():
        seq[3].weight.zero_()
        seq[3].bias.copy_(torch.tensor(bias))


def np_ffn(fusion: SHoMRFusion, x: np.ndarray) -> np.ndarray:
    return linear(fusion, "ffn.3", gelu(linear(fusion, "ffn.0", x)))


def np_attn(fusion: SHoMRFusion, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    x = stack(v, t)
    return mha(fusion, "cross_attn", x, x, heads=4)[0].mean(axis=1)


@pytest.fixture
def setup() -> tuple[SHoMRFusion, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    fusion = SHoMRFusion(16, heads=4).eval()
    v, t = torch.randn(3, 16), torch.randn(3, 16)
    return fusion, v, t, v.double().numpy(), t.double().numpy()


def test_soft_sample_matches_hand_computation(setup) -> None:
    fusion, v, t, vn, tn = setup
    set_logits(fusion.conf_net, [0.3, 0.0])  # max softmax 0.574 ≤ 0.6 → soft
    conf = softmax(np.array([0.3, 0.0]))
    s = layer_norm(fusion, "norm1", conf[0] * vn + conf[1] * tn + np_attn(fusion, vn, tn))
    out, weights = fusion.forward_with_weights(v, t)
    np.testing.assert_allclose(out.detach().numpy(), s + np_ffn(fusion, s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.detach().numpy(), np.tile(conf, (3, 1)), rtol=1e-5)


@pytest.mark.parametrize("route", [0, 1, 2])
def test_hard_sample_routes_match_hand_computation(setup, route: int) -> None:
    fusion, v, t, vn, tn = setup
    set_logits(fusion.conf_net, [2.0, 0.0])  # max softmax 0.88 > 0.6 → hard
    set_logits(fusion.router, (np.eye(3)[route] * 10).tolist())
    g = sigmoid(linear(fusion, "gate.0", np.concatenate([vn, tn], axis=-1)))
    b = layer_norm(fusion, "norm2", g * vn + (1 - g) * tn + np_attn(fusion, vn, tn))
    expected, expected_w = {
        0: (gelu(linear(fusion, "proj_single.0", vn)), [1.0, 0.0]),
        1: (gelu(linear(fusion, "proj_single.0", tn)), [0.0, 1.0]),
        2: (b + np_ffn(fusion, b), None),
    }[route]
    out, weights = fusion.forward_with_weights(v, t)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    if expected_w is None:
        g_mean = g.mean(axis=-1)
        expected_w = np.stack([g_mean, 1 - g_mean], axis=-1)
    np.testing.assert_allclose(weights.detach().numpy(), np.broadcast_to(expected_w, (3, 2)))


def test_temperature_validated() -> None:
    with pytest.raises(ValueError, match="routing_temperature"):
        SHoMRFusion(16, heads=4, routing_temperature=0.0)
