"""Memoised frozen prefix of a pretrained EfficientNet-Lite image branch (training only).

With the stem and first blocks frozen (`init.freeze_vision_blocks`, BatchNorm in eval mode),
their output for a given image is fixed, yet recomputing it is most of an epoch's cost on a
CPU: at 112 px the frozen 11 of Lite0's 16 blocks take ~80 % of the forward pass. Each distinct
input image (a training image or its mirror, a dev image, the black text-only image) goes
through them once; later epochs reuse the stored maps (7×7×112 floats, ~22 KB an image).
Random crops make every view new, so a recipe that uses this keeps flips and drops crops.
The cache is an attribute of the backbone, not a module: it is never saved nor exported, and
`detach` removes it once training ends.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from models.efficientnet_lite import EfficientNetLite


class MemoisedPrefix:
    """Callable installed as `EfficientNetLite.prefix_cache`: key = digest of the image's
    float pixels, value = the frozen prefix's output map."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.maps: dict[bytes, Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, model: EfficientNetLite, pixel_values: Tensor) -> Tensor:
        keys = [
            hashlib.blake2b(row.numpy().tobytes(), digest_size=16).digest()
            for row in pixel_values.detach().contiguous()
        ]
        missing = sorted({i for i, k in enumerate(keys) if k not in self.maps})
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            with torch.no_grad():
                maps = model.run_prefix(pixel_values[missing], self.depth)
            for i, m in zip(missing, maps, strict=True):
                self.maps[keys[i]] = m.clone()
        return torch.stack([self.maps[k] for k in keys])


def attach(vision: torch.nn.Module, depth: int) -> MemoisedPrefix | None:
    """Install the memo on an EfficientNet-Lite whose first `depth` blocks are frozen."""
    if not isinstance(vision, EfficientNetLite) or depth <= 0:
        return None
    memo = MemoisedPrefix(depth)
    vision.prefix_cache = memo
    return memo


def detach(vision: torch.nn.Module) -> None:
    if isinstance(vision, EfficientNetLite):
        vision.prefix_cache = None
