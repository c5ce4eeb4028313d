"""The graph's input statistics on real and synthetic images and on token ids: channel means,
no colour in a blank or a grey slice, some in a wound photo, much in RGB noise; the text
statistics are the table's values averaged over the real tokens only; the token table follows
the counts."""

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


def test_image_stats_tell_grey_from_colour() -> None:
    by_name = {image.name: _stats(image.png) for image in synthetic_images()}
    white, black, noise = by_name["blank_white"], by_name["black"], by_name["noise_uniform_rgb"]
    ct, wound = _stats(MEDPIX_IMAGE.read_bytes()), _stats(WOUND_IMAGE.read_bytes())
    no_colour = np.float32(np.log(0.001))
    assert np.allclose(white[:3], 1.0) and np.allclose(black[:3], 0.0)  # channel means
    assert white[3] == black[3] == no_colour and abs(ct[3] - no_colour) < 1e-3  # grey: none
    assert wound[3] > -3 and noise[3] > -4  # a photo has colour; RGB noise some, once pooled
    assert 0.05 < ct[0] == ct[1] == ct[2] < 0.95  # a CT slice: grey, its black background


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
