"""Frozen-teacher outputs for distillation.

Without augmentation the eval-mode teacher's outputs for a training row never change, so they
are computed once before the student's first epoch instead of every step (the teacher forward
dominates distillation cost on CPU). With flips or crops they are computed per batch on the same
pixels, unless the config asks for the teacher's clean views (`distill.teacher_views: clean`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.training.tensors import Batch, SplitTensors

KEEP = ("logits_modality", "logits_location", "img_raw", "txt_raw")


class TeacherOutputs:
    def __init__(self, teacher: nn.Module, split: SplitTensors, batch_size: int, cached: bool):
        self.teacher = teacher.eval()
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        self.split = split
        self.cache: dict[str, Tensor] | None = self._precompute(batch_size) if cached else None

    @torch.no_grad()
    def _precompute(self, batch_size: int) -> dict[str, Tensor]:
        parts: dict[str, list[Tensor]] = {k: [] for k in KEEP}
        for batch in self.split.batches(batch_size):
            out = self.teacher(batch.pixel_values, batch.input_ids, batch.attention_mask)
            for key in KEEP:
                parts[key].append(out[key])
        return {k: torch.cat(v) for k, v in parts.items()}

    @torch.no_grad()
    def for_batch(self, student_batch: Batch) -> dict[str, Tensor]:
        """Teacher outputs for the student's rows (same pixels, the teacher's own tokens)."""
        rows = student_batch.index
        if self.cache is not None:
            return {k: v[rows] for k, v in self.cache.items()}
        ids, mask = self.split.input_ids[rows], self.split.attention_mask[rows]
        out = self.teacher(student_batch.pixel_values, ids, mask)
        return {k: out[k] for k in KEEP}
