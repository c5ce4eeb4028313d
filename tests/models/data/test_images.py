"""The training image cache must be bit-identical to serving's image_to_array."""

from __future__ import annotations

import numpy as np

from app.contract.image import image_to_array, load_image_file
from models.data import load_medpix, load_wound
from models.data.images import load_resized, normalise


def test_cached_pixels_normalise_to_exactly_image_to_array(medpix_root, wound_root, tmp_path):
    paths = [s.image_path for s in load_medpix(medpix_root, "dev")[:3]]
    paths += [s.image_path for s in load_wound(wound_root, "dev")[:3]]
    pixels = load_resized(paths, 224, tmp_path)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 224, 224, 3)
    batch = normalise(pixels)
    for row, path in enumerate(paths):
        expected = image_to_array(load_image_file(path))
        np.testing.assert_array_equal(batch[row], expected)
        np.testing.assert_array_equal(normalise(pixels[row]), expected)


def test_cache_file_is_reused_and_keyed_by_size(medpix_root, tmp_path):
    paths = [s.image_path for s in load_medpix(medpix_root, "dev")[:2]]
    first = load_resized(paths, 64, tmp_path)
    files = list(tmp_path.glob("images-*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(load_resized(paths, 64, tmp_path), first)
    assert len(list(tmp_path.glob("images-*.npy"))) == 1
    load_resized(paths, 32, tmp_path)
    assert len(list(tmp_path.glob("images-*.npy"))) == 2
