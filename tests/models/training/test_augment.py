"""Random resized crops: bounds, reproducibility and that pixels come from the crop box."""

from __future__ import annotations

import numpy as np
import torch

from models.training.augment import crop_box, random_resized_crops


def test_boxes_stay_inside_and_cover_the_asked_share() -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(500):
        left, top, right, bottom = crop_box(60, 80, 0.5, gen)
        assert 0 <= left < right <= 80 and 0 <= top < bottom <= 60
        share = (right - left) * (bottom - top) / (60 * 80)
        assert 0.4 <= share <= 1.0  # ≥ 0.5 asked; clipping to the frame may trim a little


def test_same_seed_same_crops_and_values_from_the_box() -> None:
    columns = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))  # value = 4 × column
    pixels = np.repeat(columns[None, :, :, None], 3, axis=3).repeat(6, axis=0)
    first = random_resized_crops(pixels, 0.3, torch.Generator().manual_seed(3))
    again = random_resized_crops(pixels, 0.3, torch.Generator().manual_seed(3))
    assert np.array_equal(first, again) and first.shape == pixels.shape
    gen = torch.Generator().manual_seed(3)
    for image in first:
        left, _top, right, _bottom = crop_box(64, 64, 0.3, gen)
        assert image.min() >= 4 * left - 2 and image.max() <= 4 * (right - 1) + 2
    assert not np.array_equal(first[0], pixels[0])
