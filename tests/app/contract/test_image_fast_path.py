"""Serving's fast image path (`preprocess_image`) against training's exact path.

Exact path: full decode, bilinear resize straight to 224×224, (x/255 − mean)/std. The fast path
is bit-identical to it for every image below twice the model size (both datasets, all modes)
and for the research mean/std 0.5; above that it decodes JPEGs at 1/2–1/8 scale in the DCT
domain and box-reduces other formats first, which changes pixels within:

    mean |Δ| ≤ FAST_PATH_MEAN_TOL = 1 uint8 level (2/255 ≈ 0.0078 in the normalised [-1, 1])
    max  |Δ| ≤ FAST_PATH_MAX_TOL  = 24 levels (≈ 0.19)

Why that is acceptable (measured with Pillow 13 / libjpeg-turbo when the path was written):
- synthetic 1024×768 q90 JPEG below (gradients, hard edges, 3-px white lines): mean 0.0041,
  max 0.118 (15 levels, on the lines). Saving the same picture at q75 instead of q90 moves the
  exact path's output by mean 0.0068, max 0.078: the fast path costs less than a JPEG quality
  step a phone or a messaging app applies routinely. The max sits on hard edges, where a
  two-stage downscale (box, then bilinear) differs from one wide bilinear filter by design
  (a full decode + reduce(2) + bilinear gives the same 0.094 without chroma subsampling).
- 51 wound dev images upscaled to 1024×768 q90 (real content at phone size): mean 0.0018
  (q75 vs q90: 0.0047), max 0.055. The wound student's probabilities on 40 of them moved by at
  most 0.0005 (q75 vs q90: 0.0019), no predicted class changed.
- 2048×1536 PNG (box reduce, gap 3): mean 0.0009, max 0.063 (gap 2: mean 0.0019, max 0.071).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.contract.image import (
    ImageDecodeError,
    ImageLimits,
    _draft_scale,
    decode_image,
    image_to_array,
    preprocess_image,
)
from fusionserve.bench.preprocess import phone_photo

LEVEL = 2.0 / 255.0  # one uint8 step in the normalised space
FAST_PATH_MEAN_TOL = 1 * LEVEL
FAST_PATH_MAX_TOL = 24 * LEVEL
SIZE = 224
ORIENTATION_ROTATE_CW = 6  # EXIF: the stored image must be turned 90° clockwise for display


def reference(data: bytes, size: int = SIZE) -> np.ndarray:
    """The exact path written out: full decode, one bilinear resize, three-step arithmetic."""
    resized = decode_image(data).resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(resized, dtype=np.float32)
    half = np.float32(0.5)
    return ((x * np.float32(1.0 / 255.0) - half) / half).transpose(2, 0, 1)


def fast(data: bytes, size: int = SIZE) -> np.ndarray:
    return preprocess_image(data, size).pixels


def encode(img: Image.Image, fmt: str, orientation: int | None = None, **kwargs: object) -> bytes:
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def assert_within_tolerance(got: np.ndarray, want: np.ndarray) -> None:
    diff = np.abs(got - want)
    assert got.shape == want.shape == (3, SIZE, SIZE)
    assert float(diff.mean()) <= FAST_PATH_MEAN_TOL, f"mean |Δ| {diff.mean():.4f}"
    assert float(diff.max()) <= FAST_PATH_MAX_TOL, f"max |Δ| {diff.max():.4f}"


@pytest.fixture(scope="module")
def phone_jpeg() -> bytes:
    return encode(phone_photo(), "JPEG", quality=90)


# --- one fused normalisation -------------------------------------------------------------


def test_fused_normalisation_is_bit_identical_for_research_stats() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = Image.fromarray(np.stack([values, values[::-1], values.T], axis=-1))
    half = np.float32(0.5)
    three_step = (np.asarray(img, np.float32) * np.float32(1.0 / 255.0) - half) / half
    assert np.array_equal(image_to_array(img, size=16), three_step.transpose(2, 0, 1))


def test_fused_normalisation_within_1e_6_for_other_stats() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet: std not a power of 2
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = Image.fromarray(np.stack([values] * 3, axis=-1))
    x = np.asarray(img, np.float32) * np.float32(1.0 / 255.0)
    three_step = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    fused = image_to_array(img, 16, mean, std)
    assert float(np.abs(fused - three_step.transpose(2, 0, 1)).max()) <= 1e-6


def test_grayscale_resized_as_one_band_is_bit_identical_to_rgb() -> None:
    gray = Image.effect_noise((301, 257), 60)
    assert gray.mode == "L"
    assert np.array_equal(image_to_array(gray), image_to_array(gray.convert("RGB")))


# --- draft / reduce only where the caller opts in ----------------------------------------


@pytest.mark.parametrize(
    "size,scale",
    [
        ((1024, 768), 2),  # phone-size: 512x384, both sides still >= 224
        ((768, 1024), 2),  # the same photo stored rotated: the square target makes it symmetric
        ((4032, 3024), 8),
        ((1920, 1080), 4),  # 1/8 would give 135 rows < 224
        ((320, 320), 1),  # the datasets: 1/2 would go below the target
        ((1023, 768), 1),  # odd width: a partial last pixel would stretch the geometry
        ((447, 1000), 1),
    ],
)
def test_draft_scale(size: tuple[int, int], scale: int) -> None:
    assert _draft_scale(size, SIZE) == scale


def test_draft_only_when_the_caller_passes_target_size(phone_jpeg: bytes) -> None:
    assert decode_image(phone_jpeg).size == (1024, 768)  # training: exact pixels
    drafted = decode_image(phone_jpeg, target_size=SIZE)
    assert drafted.size == (512, 384) and drafted.mode == "RGB"
    assert preprocess_image(phone_jpeg, SIZE).source_size == (1024, 768)  # as the client sent


def test_limits_are_checked_on_the_full_header_before_draft() -> None:
    big = encode(Image.new("RGB", (2048, 2048), (90, 90, 90)), "JPEG")
    with pytest.raises(ImageDecodeError) as err:
        preprocess_image(big, SIZE, limits=ImageLimits(max_pixels=4_000_000))
    assert err.value.code == "image_too_large"
    small = encode(Image.new("RGB", (16, 16)), "JPEG")
    with pytest.raises(ImageDecodeError) as err:
        preprocess_image(small, SIZE, limits=ImageLimits(min_side=32))
    assert err.value.code == "image_too_small"


# --- the fast path against the exact path ------------------------------------------------


def test_dataset_images_are_bit_identical(medpix_root: Path, wound_root: Path) -> None:
    """Both datasets are < 2x the model size: no draft, no reduce, nothing may change."""
    pngs = sorted((medpix_root / "images").glob("*.png"))[::97]
    jpegs = sorted((wound_root / "images").glob("*.jpg"))[::125]
    assert pngs and jpegs
    for path in pngs + jpegs:
        data = path.read_bytes()
        expected = reference(data)
        assert np.array_equal(fast(data), expected), path.name
        assert np.array_equal(image_to_array(decode_image(data)), expected), path.name


def test_phone_jpeg_within_tolerance(phone_jpeg: bytes) -> None:
    assert_within_tolerance(fast(phone_jpeg), reference(phone_jpeg))


def test_phone_jpeg_costs_less_than_a_jpeg_quality_step(phone_jpeg: bytes) -> None:
    """The yardstick: q90 → q75 of the same picture moves the exact path more (on average)."""
    exact = reference(phone_jpeg)
    fast_shift = np.abs(fast(phone_jpeg) - exact).mean()
    quality_shift = np.abs(reference(encode(phone_photo(), "JPEG", quality=75)) - exact).mean()
    assert fast_shift < quality_shift


def test_phone_jpeg_with_exif_rotation(phone_jpeg: bytes) -> None:
    """Drafting happens on the stored axes, then the picture is turned upright."""
    rotated = encode(phone_photo(), "JPEG", ORIENTATION_ROTATE_CW, quality=90)
    assert decode_image(rotated, target_size=SIZE).size == (384, 512)
    got = fast(rotated)
    assert_within_tolerance(got, reference(rotated))
    turned_clockwise = np.rot90(reference(phone_jpeg), k=-1, axes=(1, 2))
    assert_within_tolerance(got, np.ascontiguousarray(turned_clockwise))


def test_large_png_box_reduced_within_tolerance() -> None:
    png = encode(phone_photo(2048, 1536), "PNG")
    got, want = fast(png), reference(png)
    assert not np.array_equal(got, want)  # the reduce path did run
    assert_within_tolerance(got, want)


def test_real_wound_photo_at_phone_size_within_tolerance(wound_root: Path) -> None:
    path = next(
        p for p in sorted((wound_root / "images").glob("*.jpg")) if min(Image.open(p).size) >= 300
    )
    upscaled = Image.open(path).convert("RGB").resize((1024, 768), Image.Resampling.BICUBIC)
    data = encode(upscaled, "JPEG", quality=90)
    assert_within_tolerance(fast(data), reference(data))
