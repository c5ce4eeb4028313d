"""Unimodal training views: what the model sees when a client leaves one input out.

A fused model leans on whichever input fits first (MedPix captions name the modality), so its
image branch stays weak and an image sent without text gets a confident wrong answer. Two
remedies, both in the exact form the service builds the missing input:

- `hide_text` (text dropout): a share of rows get the empty-text row — the service's fallback
  "No description available" as the bundle's tokenizer encodes it — instead of their text.
- `UnimodalLoss`: every batch is also classified image-only (its image + the empty-text row)
  and text-only (a black image + its text) through the same fusion and heads, and those CE
  losses are added with weights `optim.image_only_loss` and `optim.text_only_loss`. The
  black image's features come from the vision branch in eval mode (batch-norm running
  statistics, as served), without gradients: it teaches fusion and heads what "no image"
  looks like, not the backbone.

With an exported teacher, the image-only view can also distil toward the teacher's own
image-only answer (`ImageOnlyTeacher`, `distill.image_only_alpha`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.backbones import text_features, vision_features
from models.data.images import normalise
from models.multitask import MultiTaskModel
from models.training.losses import ClassWeights, ce_loss, kd_loss
from models.training.modes import eval_mode
from models.training.teacher_bundle import CachedTeacherLogits
from models.training.tensors import Batch


def hide_text(
    input_ids: Tensor,
    attention_mask: Tensor,
    share: float,
    generator: torch.Generator,
    empty_text: tuple[Tensor, Tensor],
) -> tuple[Tensor, Tensor]:
    """(ids, mask) with a random `share` of the rows replaced by the empty-text row."""
    if share <= 0:
        return input_ids, attention_mask
    hidden = torch.rand(input_ids.shape[0], generator=generator) < share
    ids, mask = input_ids.clone(), attention_mask.clone()
    ids[hidden] = empty_text[0][0, : ids.shape[1]]
    mask[hidden] = empty_text[1][0, : mask.shape[1]]
    return ids, mask


@dataclass(frozen=True)
class ImageOnlyTeacher:
    """The teacher's image-only logits per training row, and the KD term's weight and T."""

    logits: CachedTeacherLogits
    alpha: float
    temperature: float


class UnimodalLoss:
    """w_image · CE(image only) + w_text · CE(text only) for one batch's forward outputs, plus
    α · KD(image only ‖ the teacher's image only) when an `ImageOnlyTeacher` is given."""

    def __init__(
        self,
        model: MultiTaskModel,
        empty_text: tuple[Tensor, Tensor],
        image_size: int,
        weights: tuple[float, float],
        class_weights: ClassWeights = None,
        image_teacher: ImageOnlyTeacher | None = None,
    ) -> None:
        self.model = model
        self.empty_text = empty_text
        self.black = torch.from_numpy(normalise(np.zeros((1, image_size, image_size, 3), np.uint8)))
        self.image_weight, self.text_weight = weights
        self.class_weights = class_weights
        self.image_teacher = image_teacher

    def black_image_features(self) -> Tensor:
        """proj_vis of the black image's features, backbone in eval mode (as served)."""
        with eval_mode(self.model.vision) as vision, torch.no_grad():
            raw = vision_features(vision, self.black)
        return self.model.proj_vis(raw)

    def __call__(self, out: dict[str, Tensor], batch: Batch) -> Tensor:
        n = out["img_proj"].shape[0]
        labels = batch.labels
        total = torch.zeros(())
        teacher = self.image_teacher
        if self.image_weight > 0 or teacher is not None:
            ids, mask = self.empty_text
            empty_txt = self.model.proj_txt(text_features(self.model.text, ids, mask))
            image_only = self.model.classify(out["img_proj"], empty_txt.expand(n, -1))
            total = total + self.image_weight * ce_loss(image_only, labels, self.class_weights)
            if teacher is not None:
                target = teacher.logits.for_batch(batch)
                total = total + teacher.alpha * kd_loss(image_only, target, teacher.temperature)
        if self.text_weight > 0:
            black = self.black_image_features().expand(n, -1)
            text_only = self.model.classify(black, out["txt_proj"])
            total = total + self.text_weight * ce_loss(text_only, labels, self.class_weights)
        return total
