"""gated against NumPy (docs/spec.md §4.4)."""

from __future__ import annotations

import numpy as np
import torch

from models.fusion import GatedFusion
from tests.models.fusion.reference import linear, sigmoid


def test_matches_hand_computation() -> None:
    torch.manual_seed(0)
    fusion = GatedFusion(8).eval()
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    vn, tn = v.double().numpy(), t.double().numpy()
    g = sigmoid(linear(fusion, "gate.0", np.concatenate([vn, tn], axis=-1)))
    expected = g * vn + (1 - g) * tn
    np.testing.assert_allclose(fusion(v, t).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_saturated_gate_selects_a_modality() -> None:
    fusion = GatedFusion(4)
    v, t = torch.randn(2, 4), torch.randn(2, 4)
    with torch.no_grad():
        fusion.gate[0].weight.zero_()
        fusion.gate[0].bias.fill_(50.0)  # g ≈ 1 → image
    torch.testing.assert_close(fusion(v, t), v)
    with torch.no_grad():
        fusion.gate[0].bias.fill_(-50.0)  # g ≈ 0 → text
    torch.testing.assert_close(fusion(v, t), t)
