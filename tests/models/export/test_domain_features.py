"""The graph's input statistics on real and synthetic images and on token ids: the channels'
energy (none in black, all in white), no colour in a blank or a grey slice, some in a wound
photo and in RGB noise; the statistics read only the strided grid; the text
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
    floor = np.float32(np.log(1e-6))
    np.testing.assert_allclose(white[:3], 0.0, atol=1e-5)  # log mean square of the [0, 1] pixel
    assert (black == floor).all()  # no energy at all: the floor everywhere
    for grey in (white, ct):  # no colour in a blank page or a CT slice
        np.testing.assert_allclose(grey[3:], floor, atol=1e-3)
    assert wound[3:].max() > -5 and noise[3:].max() > -6  # a photo has colour; RGB noise some
    assert floor < ct[0] == ct[1] == ct[2] < -0.1  # a CT slice: grey, its black background


def test_image_stats_read_every_stride_th_pixel_only() -> None:
    stats = ImageStats(SIZE, HALF, HALF)
    assert stats.stride == 4
    pixels = torch.full((1, 3, SIZE, SIZE), -1.0)  # black
    pixels[:, :, 1::4, :] = 1.0  # white rows between the grid's: not read
    with torch.no_grad():
        assert (stats(pixels) == np.float32(np.log(1e-6))).all()
        pixels[:, 0, ::4, ::4] = 1.0  # a red grid: read
        values = stats(pixels)[0].numpy()
    assert values[0] > -1e-5 and values[1] == values[2] < -13 and values[3] > -2


def test_text_stats_average_the_real_tokens_only() -> None:
    counts = np.array([0, 50, 2, 7, 0, 1000])
    table = token_table(counts)
    assert table.shape == (6, TEXT_STATS)
    assert table[:, 1].tolist() == [1, 0, 0, 0, 1, 0]  # never seen
    assert table[:, 3].tolist() == [1, 0, 1, 1, 1, 0]  # seen fewer than 10 times
    ids = torch.tensor([[5, 1, 4, 0], [2, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    with torch.no_grad():
        got = TextStats(table)(ids, mask).numpy()
    want = np.stack([table[[5, 1, 4]].mean(axis=0), table[[2, 3]].mean(axis=0)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_token_counts_skip_padding() -> None:
    ids = np.array([[3, 3, 1, 0], [2, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert token_counts(ids, mask, 5).tolist() == [0, 1, 1, 2, 0]
