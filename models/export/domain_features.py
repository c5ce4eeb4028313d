"""The domain check's input statistics, computed inside the exported graph.

The backbone's pre-fusion features are one part of each side's check (`app.contract.domain`).
A backbone trained from scratch on CT/MR slices maps a wound photo, a blank page or noise into
the middle of its feature cloud (measured on the shipped MedPix student: AUROC 0.70 for its
dev slices against wound photos from features alone). These statistics of the input itself
react to what such features miss, for any backbone:

- image (`IMAGE_STATS` values, on pixels mapped back to [0, 1], every pixel of a grid about
  `STATS_SIZE` px a side): the channel means and the log colourfulness (the mean standard
  deviation across channels): a grey CT/MR slice has none, a photo some;
- text (`TEXT_STATS` values, per token, averaged over the real tokens): the token's smoothed
  log frequency in the training texts, and whether it occurred there 0, < 3, < 10 times. The
  table is fitted on the training split at export (a [4, vocab] constant of the graph, read by
  column, so the int8 word-table pass leaves it in fp32).

Why so few image statistics: each graph node costs some 5 µs after a backbone run (its kernel
and data are out of cache), whatever its size, so the check's cost is its node count. Version 2
computed 18 (also contrast, roughness, dark/bright fractions and a 3x3 layout) in 82 nodes,
13 % of the MedPix student's graph at batch 1. Refitted on the shipped students, the channel
means and colourfulness alone flag the same share of own dev cases, every case of the other
task set and all 16 synthetic images, at the same image AUROC (1.0000): the early-block part
now sees what contrast, roughness and layout added for the previous, from-scratch backbones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from app.contract.domain import PART_KEYS, part_output

IMAGE_STATS = 4
TEXT_STATS = 4
# A grey image has colourfulness exactly 0: a lower floor puts it farther from colour photos
# (wound student, MedPix slices vs its photos: AUROC 0.979 with 0.01, 1.000 with 0.001)
_COLOUR_EPS = 0.001
_RARE = (3, 10)
STATS_SIZE = 28  # the grid the image statistics read (112 px: every 4th pixel each way)


class ImageStats(nn.Module):
    """pixel_values f32[B,3,S,S] (normalised with `mean`/`std`) → f32[B, IMAGE_STATS]: the
    channel means and log colourfulness on a grid of about `STATS_SIZE` px a side."""

    mean: Tensor
    std: Tensor

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, 3, 1, 1))
        self.pool = max(1, image_size // STATS_SIZE)

    def forward(self, pixel_values: Tensor) -> Tensor:
        if self.pool > 1:  # every pool-th pixel: one strided Slice (a pool read all of them)
            pixel_values = pixel_values[:, :, :: self.pool, :: self.pool]
        x = pixel_values * self.std + self.mean
        spread = x - x.mean(dim=1, keepdim=True)
        colour = ((spread * spread).sum(dim=1) * 0.5).sqrt().mean(dim=(1, 2))  # std over 3
        return torch.cat([x.mean(dim=(2, 3)), torch.log(_COLOUR_EPS + colour)[:, None]], dim=1)


def token_table(counts: np.ndarray) -> np.ndarray:
    """[TEXT_STATS, vocab] per-token values from the training texts' token counts."""
    counts = np.asarray(counts, dtype=np.float64)
    log_freq = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    rows = [log_freq, counts == 0, *(counts < n for n in _RARE)]
    return np.stack(rows).astype(np.float32)


def token_counts(input_ids: np.ndarray, attention_mask: np.ndarray, vocab: int) -> np.ndarray:
    """How often each token id occurs among the real (unmasked) tokens."""
    return np.bincount(input_ids[attention_mask.astype(bool)], minlength=vocab)[:vocab]


class TextStats(nn.Module):
    """input_ids, attention_mask i64[B,L] → f32[B, TEXT_STATS]: the table's values averaged
    over each text's real tokens."""

    table: Tensor

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("table", torch.from_numpy(np.ascontiguousarray(table)))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        values = self.table[:, input_ids]  # [S, B, L]
        mask = attention_mask.to(values.dtype).unsqueeze(0)
        means = (values * mask).sum(dim=2) / mask.sum(dim=2).clamp_min(1.0)
        return means.transpose(0, 1)


class DomainFeatures(nn.Module):
    """Both sides' input statistics and, when the image backbone has a known early block, its
    pooled activations (`models.export.domain_early`; the embeddings come from the model's
    own forward)."""

    def __init__(self, image: ImageStats, text: TextStats, early: nn.Module | None = None) -> None:
        super().__init__()
        self.image = image
        self.text = text
        self.early = early

    @property
    def output_names(self) -> list[str]:
        """The graph outputs these features add, in graph order (`PART_KEYS`)."""
        keys = [k for k in PART_KEYS if k[1] != "early" or self.early is not None]
        return [part_output(*key) for key in keys]
