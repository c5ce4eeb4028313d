"""`modality_dropout` (docs/spec.md §4.6): MLP over [v; t], whole-batch dropping in training."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from models.fusion.base import UnweightedFusion, concat


class ModalityDropoutFusion(UnweightedFusion):
    """out = Linear2(ReLU(Linear1([ṽ; t̃]))).

    Training only: two independent batch-level coin flips zero the whole image batch (prob
    p_img) and/or the whole text batch (prob p_txt). Eval never drops, so it is deterministic.
    """

    def __init__(self, dim: int, p_img: float = 0.3, p_txt: float = 0.3) -> None:
        super().__init__()
        for name, p in (("p_img", p_img), ("p_txt", p_txt)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        self.p_img = p_img
        self.p_txt = p_txt
        self.gated = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    @classmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> ModalityDropoutFusion:
        p_img, p_txt = float(params.get("p_img", 0.3)), float(params.get("p_txt", 0.3))
        return cls(dim, p_img=p_img, p_txt=p_txt)

    def fuse(self, v: Tensor, t: Tensor) -> Tensor:
        if self.training:
            coins = torch.rand(2, device=v.device)
            v = v * (coins[0] >= self.p_img).to(v.dtype)
            t = t * (coins[1] >= self.p_txt).to(t.dtype)
        return self.gated(concat(v, t))
