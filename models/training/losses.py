"""Training losses: CE for the teacher, and the three student objectives (docs/spec.md §6.3).

- `ce`: CE(task1) + CE(task2).
- `vanilla`: CE + α·Σ_tasks KL(softmax(t/T) ‖ softmax(s/T))·T².
- `combined`: vanilla + β·feature MSE + γ·InfoNCE. Teacher raw features are mapped to the
  student's fusion width by `FeatureProjector`, which — unlike the research code, whose lazily
  created projections never reached the optimizer — is trained with the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.multitask import LOGIT_KEYS

ClassWeights = tuple[Tensor, Tensor] | None


def ce_loss(
    out: dict[str, Tensor], labels: tuple[Tensor, Tensor], class_weights: ClassWeights = None
) -> Tensor:
    """CE(task1) + CE(task2), optionally class-weighted (weighted mean over the batch)."""
    weights = class_weights or (None, None)
    return sum(
        (
            F.cross_entropy(out[k], y, weight=w)
            for k, y, w in zip(LOGIT_KEYS, labels, weights, strict=True)
        ),
        torch.zeros(()),
    )


def balanced_class_weights(labels: Tensor, num_classes: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Per task, N / (K · n_c) from the training labels [N, 2] (sklearn's "balanced").

    Selection is on macro-F1, where a rare class counts as much as a common one; unweighted CE
    trades the rare classes away (MedPix: 742 Head vs 127 Reproductive and Urinary System).
    """
    out = []
    for task, k in enumerate(num_classes):
        counts = torch.bincount(labels[:, task], minlength=k).to(torch.float32)
        if bool((counts == 0).any()):
            missing = [c for c in range(k) if counts[c] == 0]
            raise ValueError(f"task {task + 1}: classes {missing} have no training samples")
        out.append(labels.shape[0] / (k * counts))
    return out[0], out[1]


def kd_loss(student: dict[str, Tensor], teacher: dict[str, Tensor], temperature: float) -> Tensor:
    """Σ over tasks of KLDiv(batchmean)(log_softmax(s/T), softmax(t/T))·T²."""
    total = torch.zeros(())
    for key in LOGIT_KEYS:
        log_p = F.log_softmax(student[key] / temperature, dim=-1)
        q = F.softmax(teacher[key].detach() / temperature, dim=-1)
        total = total + F.kl_div(log_p, q, reduction="batchmean") * temperature**2
    return total


def info_nce(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """InfoNCE over the batch: each student vector's positive is its own sample's teacher one."""
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher, dim=-1)
    logits = s @ t.t() / temperature
    return F.cross_entropy(logits, torch.arange(len(s), device=s.device))


class FeatureProjector(nn.Module):
    """Teacher raw image/text features → student fusion width (trained with the student)."""

    def __init__(self, teacher_img: int, teacher_txt: int, student_dim: int) -> None:
        super().__init__()
        self.img = nn.Linear(teacher_img, student_dim)
        self.txt = nn.Linear(teacher_txt, student_dim)


@dataclass(frozen=True)
class LossWeights:
    kind: str  # ce | vanilla | combined
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 0.1
    temperature: float = 4.0
    contrastive_temperature: float = 0.1
    class_weights: ClassWeights = None  # for the CE part only


def distill_loss(
    weights: LossWeights,
    student: dict[str, Tensor],
    teacher: dict[str, Tensor] | None,
    labels: tuple[Tensor, Tensor],
    projector: FeatureProjector | None,
) -> tuple[Tensor, dict[str, float]]:
    """Total student loss and its parts (for logging)."""
    ce = ce_loss(student, labels, weights.class_weights)
    parts = {"ce": float(ce.detach())}
    total = ce
    if weights.kind == "ce":
        return total, parts
    if teacher is None:
        raise ValueError(f"loss {weights.kind!r} needs teacher outputs")
    kl = kd_loss(student, teacher, weights.temperature)
    parts["kl"] = float(kl.detach())
    total = total + weights.alpha * kl
    if weights.kind == "combined":
        if projector is None:
            raise ValueError("loss 'combined' needs a FeatureProjector")
        t_img = projector.img(teacher["img_raw"].detach())
        t_txt = projector.txt(teacher["txt_raw"].detach())
        mse = F.mse_loss(student["img_proj"], t_img) + F.mse_loss(student["txt_proj"], t_txt)
        nce = 0.5 * (
            info_nce(student["img_proj"], t_img, weights.contrastive_temperature)
            + info_nce(student["txt_proj"], t_txt, weights.contrastive_temperature)
        )
        parts["mse"], parts["nce"] = float(mse.detach()), float(nce.detach())
        total = total + weights.beta * mse + weights.gamma * nce
    return total, parts
