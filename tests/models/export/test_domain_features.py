"""The graph's input statistics on real and synthetic images and on token ids: a flat image has
no contrast and no roughness, a grey slice no colour, noise is rough; the text statistics are
the table's values averaged over the real tokens only; the token table follows the counts."""

from __future__ import annotations

import numpy as np
import torch

from app.contract.image import ImageLimits, preprocess_image
from models.data.synthetic import synthetic_images
from models.export.domain_features import (
    IMAGE_STATS,
    TEXT_STATS,
    ImageStats,
    TextStats,
    token_counts,
    token_table,
)
from tests.app.helpers import MEDPIX_IMAGE, WOUND_IMAGE

SIZE = 112
HALF = (0.5, 0.5, 0.5)


def _pixels(png: bytes) -> torch.Tensor:
    limits = ImageLimits(max_pixels=10**9, min_side=1)
    return torch.from_numpy(preprocess_image(png, SIZE, HALF, HALF, limits).pixels[None])


def _stats(png: bytes) -> np.ndarray:
    with torch.no_grad():
        values = ImageStats(SIZE, HALF, HALF)(_pixels(png))[0].numpy()
    assert values.shape == (IMAGE_STATS,)
    return values


def test_image_stats_tell_flat_grey_colour_and_noise_apart() -> None:
    by_name = {image.name: _stats(image.png) for image in synthetic_images()}
    white, noise = by_name["blank_white"], by_name["noise_uniform_rgb"]
    ct, wound = _stats(MEDPIX_IMAGE.read_bytes()), _stats(WOUND_IMAGE.read_bytes())
    log_floor = np.log(0.01)
    assert np.allclose(white[:3], 1.0) and white[3] == np.float32(log_floor)  # no contrast
    assert white[5] == np.float32(log_floor) and white[8] == 1.0  # no roughness, all bright
    assert ct[4] < -4 < wound[4]  # colourfulness: a grey slice has none, a photo has some
    assert noise[6] > ct[6] + 1  # roughness relative to contrast: noise is rough
    assert 0.0 < ct[7] < 1.0  # a CT slice has its black background


def test_text_stats_average_the_real_tokens_only() -> None:
    counts = np.array([0, 50, 2, 7, 0, 1000])
    table = token_table(counts)
    assert table.shape == (TEXT_STATS, 6)
    assert table[1].tolist() == [1, 0, 0, 0, 1, 0]  # never seen
    assert table[3].tolist() == [1, 0, 1, 1, 1, 0]  # seen fewer than 10 times
    ids = torch.tensor([[5, 1, 4, 0], [2, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    with torch.no_grad():
        got = TextStats(table)(ids, mask).numpy()
    want = np.stack([table[:, [5, 1, 4]].mean(axis=1), table[:, [2, 3]].mean(axis=1)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_token_counts_skip_padding() -> None:
    ids = np.array([[3, 3, 1, 0], [2, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert token_counts(ids, mask, 5).tolist() == [0, 1, 1, 2, 0]
