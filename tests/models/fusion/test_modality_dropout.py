"""modality_dropout against NumPy (docs/spec.md §4.6): whole-batch dropping only in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.fusion import ModalityDropoutFusion
from tests.models.fusion.reference import linear


def reference(fusion: ModalityDropoutFusion, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    h = np.maximum(linear(fusion, "gated.0", np.concatenate([v, t], axis=-1)), 0.0)
    return linear(fusion, "gated.2", h)


def test_eval_matches_hand_computation_and_never_drops() -> None:
    torch.manual_seed(0)
    fusion = ModalityDropoutFusion(8, p_img=1.0, p_txt=1.0).eval()
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    expected = reference(fusion, v.double().numpy(), t.double().numpy())
    np.testing.assert_allclose(fusion(v, t).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("p_img", "p_txt"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_training_drops_the_whole_modality_batch(p_img: float, p_txt: float) -> None:
    torch.manual_seed(0)
    fusion = ModalityDropoutFusion(8, p_img=p_img, p_txt=p_txt).train()
    v, t = torch.randn(5, 8), torch.randn(5, 8)
    vn = v.double().numpy() * (0.0 if p_img == 1.0 else 1.0)
    tn = t.double().numpy() * (0.0 if p_txt == 1.0 else 1.0)
    expected = reference(fusion, vn, tn)
    np.testing.assert_allclose(fusion(v, t).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_training_coin_flips_are_batch_level_and_both_outcomes_occur() -> None:
    torch.manual_seed(0)
    fusion = ModalityDropoutFusion(8, p_img=0.5, p_txt=0.0).train()
    v, t = torch.randn(5, 8), torch.randn(5, 8)
    with torch.no_grad():
        kept = fusion.gated(torch.cat([v, t], -1))
        dropped = fusion.gated(torch.cat([torch.zeros_like(v), t], -1))
        outcomes = set()
        for _ in range(40):
            out = fusion(v, t)
            is_kept = torch.allclose(out, kept)
            assert is_kept or torch.allclose(out, dropped)  # never a per-sample mixture
            outcomes.add(is_kept)
    assert outcomes == {True, False}


def test_probabilities_validated() -> None:
    with pytest.raises(ValueError, match="p_img"):
        ModalityDropoutFusion(8, p_img=1.5)
