"""film against NumPy (docs/spec.md §4.7): γ used directly, text conditions vision."""

from __future__ import annotations

import numpy as np
import torch

from models.fusion import FiLMFusion
from tests.models.fusion.reference import linear


def test_matches_hand_computation() -> None:
    torch.manual_seed(0)
    fusion = FiLMFusion(8).eval()
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    vn, tn = v.double().numpy(), t.double().numpy()
    expected = linear(fusion, "mlp_gamma", tn) * vn + linear(fusion, "mlp_beta", tn)
    np.testing.assert_allclose(fusion(v, t).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gamma_is_not_offset_by_one() -> None:
    fusion = FiLMFusion(4)
    with torch.no_grad():
        for p in fusion.parameters():
            p.zero_()
    # (1 + γ) would give v; the research γ ⊙ v + β gives zeros
    assert torch.count_nonzero(fusion(torch.randn(2, 4), torch.randn(2, 4))) == 0
