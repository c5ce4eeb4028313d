"""Metrics and losses on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.training.losses import (
    FeatureProjector,
    LossWeights,
    balanced_class_weights,
    ce_loss,
    distill_loss,
    info_nce,
    kd_loss,
)
from models.training.metrics import split_metrics, task_metrics


def test_task_metrics_hand_computed() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    m = task_metrics(y, probs)
    assert m["accuracy"] == 0.75
    # class 0: P=1, R=0.5 → F1 2/3; class 1: P=2/3, R=1 → F1 0.8
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["roc_auc"] == 1.0  # every positive scores above every negative


def test_auc_is_none_with_one_class_and_ovr_otherwise() -> None:
    assert task_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))["roc_auc"] is None
    y = np.array([0, 1, 2])
    probs = np.eye(3)[[0, 1, 2]] * 0.8 + 0.2 / 3
    m = task_metrics(y, probs)
    assert m["roc_auc"] == 1.0 and m["accuracy"] == 1.0
    out = split_metrics(("a", "b"), [y, y], [probs, probs[[1, 2, 0]]])
    assert out["mean_macro_f1"] == pytest.approx(0.5)


def _outputs(logit_a: list[float], logit_b: list[float]) -> dict[str, torch.Tensor]:
    return {
        "logits_modality": torch.tensor([logit_a]),
        "logits_location": torch.tensor([logit_b]),
    }


def test_kd_loss_hand_computed() -> None:
    s = _outputs([0.0, 0.0], [0.0, 0.0, 0.0])
    t = _outputs([2.0, 0.0], [0.0, 0.0, 0.0])
    temp = 2.0
    q = torch.softmax(torch.tensor([1.0, 0.0]), 0)  # teacher logits / T
    expected = float((q * (q.log() - math.log(0.5))).sum()) * temp**2
    assert float(kd_loss(s, t, temp)) == pytest.approx(expected, rel=1e-6)
    assert float(kd_loss(t, t, temp)) == pytest.approx(0.0, abs=1e-7)


def test_info_nce_hand_computed() -> None:
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]]) / 0.5
    expected = F.cross_entropy(logits, torch.tensor([0, 1]))
    assert float(info_nce(s, s * 3, 0.5)) == pytest.approx(float(expected))


def test_combined_loss_trains_the_projector() -> None:
    torch.manual_seed(0)
    student = {
        "logits_modality": torch.randn(4, 2, requires_grad=True),
        "logits_location": torch.randn(4, 5, requires_grad=True),
        "img_proj": torch.randn(4, 8, requires_grad=True),
        "txt_proj": torch.randn(4, 8, requires_grad=True),
    }
    teacher = {
        "logits_modality": torch.randn(4, 2),
        "logits_location": torch.randn(4, 5),
        "img_raw": torch.randn(4, 12),
        "txt_raw": torch.randn(4, 10),
    }
    labels = (torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 2, 3]))
    projector = FeatureProjector(12, 10, 8)
    total, parts = distill_loss(LossWeights("combined"), student, teacher, labels, projector)
    assert set(parts) == {"ce", "kl", "mse", "nce"}
    w = LossWeights("combined")
    expected = parts["ce"] + w.alpha * parts["kl"] + w.beta * parts["mse"] + w.gamma * parts["nce"]
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert projector.img.weight.grad is not None and projector.img.weight.grad.abs().sum() > 0
    assert projector.txt.weight.grad is not None and projector.txt.weight.grad.abs().sum() > 0
    ce_only, ce_parts = distill_loss(LossWeights("ce"), student, None, labels, None)
    assert set(ce_parts) == {"ce"} and float(ce_only.detach()) == pytest.approx(parts["ce"])
    vanilla, _ = distill_loss(LossWeights("vanilla"), student, teacher, labels, None)
    assert float(vanilla.detach()) == pytest.approx(parts["ce"] + parts["kl"], rel=1e-5)
    with pytest.raises(ValueError, match="needs teacher outputs"):
        distill_loss(LossWeights("vanilla"), student, None, labels, None)


def test_balanced_class_weights_hand_computed() -> None:
    labels = torch.tensor([[0, 0], [0, 1], [1, 2], [0, 1]])
    task1, task2 = balanced_class_weights(labels, (2, 3))
    assert torch.allclose(task1, torch.tensor([4 / 6, 4 / 2]))
    assert torch.allclose(task2, torch.tensor([4 / 3, 4 / 6, 4 / 3]))
    with pytest.raises(ValueError, match=r"task 2: classes \[3\] have no training samples"):
        balanced_class_weights(labels, (2, 4))


def test_weighted_ce_is_the_weighted_mean() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    w = torch.tensor([3.0, 1.0])
    out = {"logits_modality": logits, "logits_location": logits}
    nll = -F.log_softmax(logits, dim=-1)[torch.arange(3), y]
    expected = (3 * nll[0] + nll[1] + nll[2]) / 5
    weighted = ce_loss(out, (y, y), (w, w))
    assert weighted == pytest.approx(2 * float(expected))
    assert ce_loss(out, (y, y)) == pytest.approx(2 * float(nll.mean()))
    total, _parts = distill_loss(LossWeights("ce", class_weights=(w, w)), out, None, (y, y), None)
    assert float(total) == pytest.approx(float(weighted))
