"""The domain check's input statistics, computed inside the exported graph.

The backbone's pre-fusion features are one part of each side's check (`app.contract.domain`).
A backbone trained from scratch on CT/MR slices maps a wound photo, a blank page or noise into
the middle of its feature cloud (measured on the shipped MedPix student: AUROC 0.70 for its
dev slices against wound photos from features alone). These statistics of the input itself
react to what such features miss, for any backbone:

- image (`IMAGE_STATS` values, on pixels mapped back to [0, 1], every pixel of a grid about
  `STATS_SIZE` px a side): per channel, the log mean square of the pixel (brightness and
  contrast: a black image sits at the floor) and of its distance from the pixel's grey (colour:
  a grey CT/MR slice has none, a photo some);
- text (`TEXT_STATS` values, per token, averaged over the real tokens): the token's smoothed
  log frequency in the training texts, and whether it occurred there 0, < 3, < 10 times. The
  table is fitted on the training split at export (a [vocab, 4] constant of the graph; the
  int8 pass leaves `domain.` tables in fp32: `models.export.weight_only`).

Why this form: each graph node costs some 5-10 µs after a backbone run (its kernel and data are
out of cache), so the check was cut to few nodes (below the 33 of version 4 the count stopped
mattering: 27 or 20 took as long after a task-graph run; the rest is what the backbone evicted,
README "Cost"). The image statistics
are one strided 1x1 convolution (which maps the normalised pixels back to [0, 1] and takes
each pixel's distance from its grey, and reads only the grid), a square, a mean and a log:
5 nodes. Version 3 (channel means and the log mean per-pixel colour deviation) took 16, and
version 2 (18 values, also contrast, roughness, dark/bright fractions and a 3x3 layout) 82.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from app.contract.domain import PART_KEYS, part_output

IMAGE_STATS = 6
TEXT_STATS = 4
# A grey image has no colour energy at all: a low floor puts it far from colour photos (wound
# student, MedPix slices vs its photos: AUROC 0.979 with a floor of 0.01², 1.000 with 0.001²)
_ENERGY_EPS = 1e-6
_RARE = (3, 10)
STATS_SIZE = 28  # the grid the image statistics read (112 px: every 4th pixel each way)


def _pixel_maps(mean: Sequence[float], std: Sequence[float]) -> tuple[Tensor, Tensor]:
    """The 1x1 convolution's weight [6, 3, 1, 1] and bias [6] from normalised pixels: rows 0-2
    the pixel in [0, 1] (x·std + mean), rows 3-5 its distance from the mean of its channels."""
    scale, shift = torch.tensor(list(std)), torch.tensor(list(mean))
    off_grey = torch.eye(3) - 1.0 / 3.0
    weight = torch.cat([torch.diag(scale), off_grey * scale[None, :]])
    bias = torch.cat([shift, off_grey @ shift])
    return weight.view(6, 3, 1, 1), bias


class ImageStats(nn.Module):
    """pixel_values f32[B,3,S,S] (normalised with `mean`/`std`) → f32[B, IMAGE_STATS]: per
    channel, log mean square of the [0, 1] pixel and of its distance from its grey, on a grid
    of about `STATS_SIZE` px a side."""

    weight: Tensor
    bias: Tensor

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        weight, bias = _pixel_maps(mean, std)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride = max(1, image_size // STATS_SIZE)

    def forward(self, pixel_values: Tensor) -> Tensor:
        x = functional.conv2d(pixel_values, self.weight, self.bias, stride=self.stride)
        return torch.log(_ENERGY_EPS + (x * x).mean(dim=(2, 3)))


def token_table(counts: np.ndarray) -> np.ndarray:
    """[vocab, TEXT_STATS] per-token values from the training texts' token counts."""
    counts = np.asarray(counts, dtype=np.float64)
    log_freq = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    rows = [log_freq, counts == 0, *(counts < n for n in _RARE)]
    return np.stack(rows, axis=1).astype(np.float32)


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
        values = functional.embedding(input_ids, self.table)  # [B, L, S]: one Gather (indexing
        # exports as Unsqueeze + GatherND)
        mask = attention_mask.to(values.dtype).unsqueeze(2)
        return (values * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


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
