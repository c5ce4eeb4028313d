"""A network's answers and a bag-of-words text model, combined per task with fixed weights.

Why: cross-attention fusion is not guaranteed to do as well as its better half. In Wound-1-0 the
photo carries the wound type and the description its severity, and the fused answer of the
network read type worse than the same network given the image alone (dev macro-F1 .648 against
.693): the text branch, trained on 1,086 distinct descriptions, overrules the photo. Here each
task's answer is a weighted sum of log-probabilities from three sources,

    w_fused · log p_network(image, text) + w_image · log p_network(image, fallback)
      + w_text · log p_bag_of_words(text),

with weights chosen per task by cross-validation on dev (`models.training.late_fusion`), so a
task can follow the photo, the text or both. When the text is the service's empty-text fallback
(no text sent) the answer is the network's image-only answer for every task: a missing text
carries no evidence. The network is the research architecture unchanged, under ``network.``.

`modality_weights` says how much of each answer came from each side: per task, the spread
(L2 norm of the centred log-probabilities) of the image-side terms and the text-side terms, the
fused term split by the network's own cross-attention weights, summed over the tasks and
normalised; (1, 0) when no text was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from models.bow_text import BagOfWordsText
from models.config import ModelConfig
from models.multitask import LOGIT_KEYS, MODALITY_WEIGHTS_KEY, MultiTaskModel
from models.paired_pass import empty_text_projection, paired_pass

SOURCES = ("fused", "image", "text")  # the order of each task's weights


class LateFusionModel(nn.Module):
    """One network plus a `BagOfWordsText`; `task_weights` (2 tasks × SOURCES)."""

    empty_text_proj: Tensor
    task_weights: Tensor
    has_modality_weights = True

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.network = MultiTaskModel(cfg)
        self.bow = BagOfWordsText(vocab_size, cfg.num_classes)
        self.register_buffer("empty_text_proj", torch.zeros(1, cfg.fusion_dim))
        self.register_buffer("task_weights", torch.zeros(len(LOGIT_KEYS), len(SOURCES)))

    @property
    def text(self) -> PreTrainedModel:
        return self.network.text

    @torch.no_grad()
    def set_empty_text(self, ids: Sequence[int]) -> None:
        """Fix what the fallback means to both sources (`ids`: unpadded, as the bundle's
        tokenizer encodes it)."""
        self.empty_text_proj.copy_(empty_text_projection(self.network, list(ids)))
        self.bow.set_empty_text(ids)

    @torch.no_grad()
    def set_task_weights(self, weights: Sequence[Sequence[float]]) -> None:
        table = torch.tensor([[float(w) for w in row] for row in weights])
        if table.shape != self.task_weights.shape or bool((table < 0).any()):
            raise ValueError(f"task weights: {len(LOGIT_KEYS)} rows of {SOURCES} (>= 0) expected")
        if bool((table.sum(-1) <= 0).any()):
            raise ValueError("task weights: every task needs a source with weight > 0")
        self.task_weights.copy_(table)

    def forward(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        pair = paired_pass(
            self.network, self.empty_text_proj, pixel_values, input_ids, attention_mask
        )
        bag, present = self.bow(input_ids, attention_mask)
        has_text = present.unsqueeze(-1)
        cross = pair.fused.get(MODALITY_WEIGHTS_KEY)
        share = cross if cross is not None else torch.full_like(pair.img_raw[:, :2], 0.5)
        image_side = torch.zeros_like(share[:, 0])
        text_side = torch.zeros_like(share[:, 0])
        out: dict[str, Tensor] = {}
        for task, key in enumerate(LOGIT_KEYS):
            fused = torch.log_softmax(pair.fused[key], -1)
            image = torch.log_softmax(pair.image_only[key], -1)
            w_fused, w_image, w_text = self.task_weights[task]
            combined = w_fused * fused + w_image * image + w_text * bag[task]
            out[key] = torch.log_softmax(torch.where(has_text, combined, image), -1)
            fused_spread = _spread(fused) * w_fused
            image_side = image_side + w_image * _spread(image) + fused_spread * share[:, 0]
            text_side = text_side + w_text * _spread(bag[task]) + fused_spread * share[:, 1]
        text_side = text_side * present.to(text_side.dtype)
        total = (image_side + text_side).clamp_min(1e-12)
        out[MODALITY_WEIGHTS_KEY] = torch.stack([image_side / total, text_side / total], -1)
        out.update(img_raw=pair.img_raw, txt_raw=pair.txt_raw)
        return out


def late_fusion_shape(model: LateFusionModel) -> dict[str, Any]:
    """What rebuilds the module before its state_dict loads (checkpoints, bundle recovery)."""
    return {"vocab_size": model.bow.vocab_size}


def _spread(log_probs: Tensor) -> Tensor:
    """(B,) L2 norm of the log-probabilities minus their mean: how strongly a source prefers
    some classes over others (0 for a uniform answer)."""
    centred = log_probs - log_probs.mean(-1, keepdim=True)
    return centred.square().sum(-1).sqrt()
