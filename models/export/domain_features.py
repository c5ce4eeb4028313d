"""The domain check's input statistics, computed inside the exported graph.

The backbone's pre-fusion features are one part of each side's check (`app.contract.domain`).
A backbone trained from scratch on CT/MR slices maps a wound photo, a blank page or noise into
the middle of its feature cloud (measured on the shipped MedPix student: AUROC 0.70 for its
dev slices against wound photos from features alone). These statistics of the input itself
react to what such features miss, for any backbone, at a cost of a few reductions:

- image (`IMAGE_STATS` values, on pixels mapped back to [0, 1] and average-pooled to about
  `STATS_SIZE` px a side): channel means; log contrast
  (grey standard deviation); log colourfulness (standard deviation across channels); log
  roughness (mean absolute grey gradient) and its ratio to the contrast; the fractions of
  near-black and near-white pixels; mean grey of a 3x3 layout;
- text (`TEXT_STATS` values, per token, averaged over the real tokens): the token's smoothed
  log frequency in the training texts, and whether it occurred there 0, < 3, < 10 times. The
  table is fitted on the training split at export (a [4, vocab] constant of the graph, read by
  column, so the int8 word-table pass leaves it in fp32).

Why pooled: the image statistics are some 80 small nodes; on the full 112 px input they cost
13 % of the MedPix student's graph at batch 1, on a 28 px pooling of it under 1 %, and the
refitted check flags the same cases (both students: own dev, the other task set, the
synthetic images and the image AUROC unchanged to the fourth digit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from app.contract.domain import PART_KEYS, part_output

IMAGE_STATS = 18
TEXT_STATS = 4
_EPS = 0.01  # floor inside the logs: a flat image has contrast 0
# A grey image has colourfulness exactly 0: a lower floor puts it farther from colour photos
# (wound student, MedPix slices vs its photos: AUROC 0.979 with 0.01, 1.000 with 0.001)
_COLOUR_EPS = 0.001
_DARK, _BRIGHT = 0.05, 0.95
_RARE = (3, 10)
STATS_SIZE = 28  # the pooled side the image statistics are computed on (112 px: 4 x 4 pooling)


class ImageStats(nn.Module):
    """pixel_values f32[B,3,S,S] (normalised with `mean`/`std`) → f32[B, IMAGE_STATS]."""

    mean: Tensor
    std: Tensor

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, 3, 1, 1))
        self.pool = max(1, image_size // STATS_SIZE)
        pooled = image_size // self.pool
        self.bounds = [round(pooled * i / 3) for i in range(4)]  # a 3x3 layout

    def forward(self, pixel_values: Tensor) -> Tensor:
        if self.pool > 1:
            pixel_values = functional.avg_pool2d(pixel_values, self.pool)
        x = pixel_values * self.std + self.mean
        grey = x.mean(dim=1)
        contrast = grey.flatten(1).std(dim=1)
        colour = x.std(dim=1).mean(dim=(1, 2))
        rough = (grey[:, :, 1:] - grey[:, :, :-1]).abs().mean(dim=(1, 2)) + (
            grey[:, 1:, :] - grey[:, :-1, :]
        ).abs().mean(dim=(1, 2))
        log_contrast, log_rough = torch.log(_EPS + contrast), torch.log(_EPS + rough)
        b = self.bounds
        layout = [
            grey[:, b[i] : b[i + 1], b[j] : b[j + 1]].mean(dim=(1, 2))
            for i in range(3)
            for j in range(3)
        ]
        scalars = [
            log_contrast,
            torch.log(_COLOUR_EPS + colour),
            log_rough,
            log_rough - log_contrast,
            (grey < _DARK).float().mean(dim=(1, 2)),
            (grey > _BRIGHT).float().mean(dim=(1, 2)),
            *layout,
        ]
        return torch.cat([x.mean(dim=(2, 3)), torch.stack(scalars, dim=1)], dim=1)


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
