"""concat_mlp against NumPy (docs/spec.md §4.2), including the layer-count-dependent layout."""

from __future__ import annotations

import numpy as np
import torch

from models.fusion import ConcatMLPFusion
from tests.models.fusion.reference import gelu, linear


def test_two_layers_match_hand_computation() -> None:
    torch.manual_seed(0)
    fusion = ConcatMLPFusion(8, hidden_mult=3, layers=2).eval()
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    x = np.concatenate([v.double().numpy(), t.double().numpy()], axis=-1)
    expected = linear(fusion, "mlp.3", gelu(linear(fusion, "mlp.0", x)))
    np.testing.assert_allclose(fusion(v, t).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_layout_by_layer_count() -> None:
    single = ConcatMLPFusion(8, layers=1)
    assert {k: tuple(p.shape) for k, p in single.state_dict().items()} == {
        "mlp.0.weight": (8, 16),
        "mlp.0.bias": (8,),
    }
    three = ConcatMLPFusion(8, hidden_mult=2, layers=3)
    shapes = {k: tuple(p.shape) for k, p in three.state_dict().items() if k.endswith("weight")}
    assert shapes == {"mlp.0.weight": (16, 16), "mlp.3.weight": (16, 16), "mlp.6.weight": (8, 16)}
