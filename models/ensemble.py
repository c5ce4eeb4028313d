"""Several trainings of one recipe (different seeds) served as one model.

A small student trained from scratch varies a lot between seeds (wound type macro-F1 .44–.55 on
dev for one recipe), so any single seed is a draw. Averaging the members' probabilities keeps
what they agree on and removes the draw: it is the recipe, not a lucky seed, that ships. Each
member is the research architecture unchanged (`MultiTaskModel`, same state_dict layout under
``members.<i>.``); only the way the answers are combined is new, and it is exported into the
same ONNX graph, so the bundle contract does not change.

`image_vote`: each member first answers with the geometric mean of its fused answer and its
answer to the same image with the service's empty-text fallback ("No description available" as
the bundle's tokenizer encodes it). Where the image is what carries a task (wound type) and the
text branch has memorised training descriptions, this second opinion keeps the text from
overruling the photo. For an input whose text is the fallback the two opinions are the same
answer, so an image sent alone is answered exactly as without the vote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from models.config import ModelConfig
from models.multitask import EMBEDDING_KEYS, LOGIT_KEYS, MODALITY_WEIGHTS_KEY, MultiTaskModel
from models.paired_pass import empty_text_projection, paired_pass


class SeedEnsemble(nn.Module):
    """`size` members of one config; forward returns, per task, the log of the mean member
    probability (softmax of it is that mean, so temperature calibration and export treat it as
    logits), the members' mean modality weights, and `img_raw`/`txt_raw`: the members'
    pre-fusion features concatenated (the domain check's embeddings, `models.export.domain`).

    With `image_vote`, `empty_text_proj` holds each member's projected features of the
    empty-text fallback (set once by `set_empty_text` when the members are joined, saved with
    the weights); each member then classifies the image with its text and with that fallback
    in one batched pass, so every weight is used once in the exported graph (int8 quantizes
    MatMuls whose weight is a plain initializer).
    """

    empty_text_proj: Tensor

    def __init__(self, cfg: ModelConfig, size: int, image_vote: bool = False) -> None:
        super().__init__()
        if size < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {size}")
        self.cfg = cfg
        self.members = nn.ModuleList(MultiTaskModel(cfg) for _ in range(size))
        self.image_vote = image_vote
        if image_vote:
            self.register_buffer("empty_text_proj", torch.zeros(size, 1, cfg.fusion_dim))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def has_modality_weights(self) -> bool:
        return bool(self.first.has_modality_weights)

    @property
    def networks(self) -> list[MultiTaskModel]:
        """The members, typed."""
        return [m for m in self.members if isinstance(m, MultiTaskModel)]

    @property
    def first(self) -> MultiTaskModel:
        return self.networks[0]

    @property
    def text(self) -> PreTrainedModel:
        """The first member's text backbone (all members share one tokenizer and vocabulary)."""
        return self.first.text

    def set_empty_text(self, ids: Sequence[int]) -> None:
        """Store each member's projected features of the empty-text fallback (`ids`: the
        fallback as the bundle's tokenizer encodes it, without padding)."""
        if not self.image_vote:
            raise ValueError("set_empty_text: this ensemble has no image vote")
        for slot, member in enumerate(self.networks):
            self.empty_text_proj[slot] = empty_text_projection(member, list(ids))

    def member_answer(
        self, slot: int, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        """One member's logits (log-probabilities with the image vote) and modality weights."""
        member = self.networks[slot]
        if not self.image_vote:
            return member(pixel_values, input_ids, attention_mask)
        pair = paired_pass(
            member, self.empty_text_proj[slot], pixel_values, input_ids, attention_mask
        )
        answer = {
            key: torch.log_softmax(
                (
                    torch.log_softmax(pair.fused[key], -1)
                    + torch.log_softmax(pair.image_only[key], -1)
                )
                / 2,
                dim=-1,
            )
            for key in LOGIT_KEYS
        }
        if MODALITY_WEIGHTS_KEY in pair.fused:
            answer[MODALITY_WEIGHTS_KEY] = pair.fused[MODALITY_WEIGHTS_KEY]
        answer.update(img_raw=pair.img_raw, txt_raw=pair.txt_raw)
        return answer

    def forward(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        answers = [
            self.member_answer(slot, pixel_values, input_ids, attention_mask)
            for slot in range(self.size)
        ]
        result: dict[str, Tensor] = {}
        for key in LOGIT_KEYS:
            stacked = torch.stack([torch.log_softmax(a[key], dim=-1) for a in answers])
            result[key] = torch.logsumexp(stacked, dim=0) - math.log(len(answers))
        if MODALITY_WEIGHTS_KEY in answers[0]:
            weights = torch.stack([a[MODALITY_WEIGHTS_KEY] for a in answers])
            result[MODALITY_WEIGHTS_KEY] = weights.mean(0)
        for key in EMBEDDING_KEYS:  # the members' pre-fusion features side by side
            result[key] = torch.cat([a[key] for a in answers], dim=-1)
        return result
