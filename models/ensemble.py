"""Several trainings of one recipe (different seeds) served as one model.

A small student trained from scratch varies a lot between seeds (wound type macro-F1 .41–.55 on
dev for one recipe), so any single seed is a draw. Averaging the members' probabilities keeps
what they agree on and removes the draw: it is the recipe, not a lucky seed, that ships. Each
member is the research architecture unchanged (`MultiTaskModel`, same state_dict layout under
``members.<i>.``); only the way the answers are combined is new, and it is exported into the
same ONNX graph, so the bundle contract does not change.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from models.config import ModelConfig
from models.multitask import LOGIT_KEYS, MODALITY_WEIGHTS_KEY, MultiTaskModel


class SeedEnsemble(nn.Module):
    """`size` members of one config; forward returns log of the mean member probability per
    task (softmax of it is that mean, so temperature calibration and export treat it as
    logits) and the members' mean modality weights."""

    def __init__(self, cfg: ModelConfig, size: int) -> None:
        super().__init__()
        if size < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {size}")
        self.cfg = cfg
        self.members = nn.ModuleList(MultiTaskModel(cfg) for _ in range(size))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def has_modality_weights(self) -> bool:
        return bool(self.first.has_modality_weights)

    @property
    def first(self) -> MultiTaskModel:
        member = self.members[0]
        assert isinstance(member, MultiTaskModel)
        return member

    @property
    def text(self) -> PreTrainedModel:
        """The first member's text backbone (all members share one tokenizer and vocabulary)."""
        return self.first.text

    def forward(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        outs = [member(pixel_values, input_ids, attention_mask) for member in self.members]
        result: dict[str, Tensor] = {}
        for key in LOGIT_KEYS:
            log_probs = torch.stack([torch.log_softmax(o[key], dim=-1) for o in outs])
            result[key] = torch.logsumexp(log_probs, dim=0) - math.log(len(outs))
        if self.has_modality_weights:
            result[MODALITY_WEIGHTS_KEY] = torch.stack(
                [o[MODALITY_WEIGHTS_KEY] for o in outs]
            ).mean(0)
        return result


ServableModel = MultiTaskModel | SeedEnsemble
