"""Random resized crops of cached uint8 images (train-time augmentation only).

Vision trains from scratch on ~1.7k MedPix images; crops that keep most of the field of view
(anatomy stays recognisable) make the image branch generalise instead of memorising. Draws
come from the run's seeded generator, so a rerun sees the same crops.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


def crop_box(
    height: int, width: int, min_scale: float, generator: torch.Generator
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) covering a random share in [min_scale, 1] of the area, with
    an aspect ratio in [3/4, 4/3]; clipped to the image."""
    draws = torch.rand(4, generator=generator).tolist()
    area = (min_scale + (1.0 - min_scale) * draws[0]) * height * width
    ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * draws[1])
    w = min(width, max(1, round(math.sqrt(area * ratio))))
    h = min(height, max(1, round(math.sqrt(area / ratio))))
    left = int(draws[2] * (width - w + 1))
    top = int(draws[3] * (height - h + 1))
    return left, top, left + w, top + h


def random_resized_crops(
    pixels: np.ndarray, min_scale: float, generator: torch.Generator
) -> np.ndarray:
    """[B,H,W,3] uint8 → same shape: each image cropped at random and resized back (bilinear,
    the serving resize)."""
    out = np.empty_like(pixels)
    height, width = pixels.shape[1:3]
    for i, image in enumerate(pixels):
        box = crop_box(height, width, min_scale, generator)
        crop = Image.fromarray(image).crop(box)
        out[i] = np.asarray(crop.resize((width, height), Image.Resampling.BILINEAR))
    return out
