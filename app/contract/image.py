"""Image decoding and preprocessing, identical for training and serving.

Research preprocessing (docs/spec.md §3.2): RGB, bilinear resize to exactly size×size (no crop,
aspect not kept), ×1/255, normalise with mean/std 0.5 → CHW float32 in [-1, 1]. Serving adds
what real clients send: EXIF orientation, grayscale/palette/alpha/16-bit/CMYK inputs, and limits
checked on the header before any pixel is decoded (decompression bombs).

Training reads the exact path (`load_image_file` + `image_to_array`). Serving reads
`preprocess_image`, which is bit-identical to it for images under twice the model size (both
datasets) and cheaper for large ones: JPEGs are decoded at 1/2, 1/4 or 1/8 scale in the DCT
domain, other formats are box-reduced before the bilinear resize. `tests/app/contract/
test_image_fast_path.py` bounds the difference (FAST_PATH_* tolerances there).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF"})
# JPEG DCT-domain scales tried by the fast path, largest first (libjpeg supports 1/2, 1/4, 1/8).
DRAFT_SCALES: tuple[int, ...] = (8, 4, 2)
# Pillow's `reducing_gap` for the fast path: box-reduce a side by int(side / target / gap) first,
# leaving at least this much downscaling to the bilinear filter, so it only acts on sides
# >= 2·gap·target (1344 px for 224). Pillow: ">= 3.0 is indistinguishable from fair resampling
# in most cases"; 2.0 halved the resize cost again but doubled the difference on a 2048 px PNG.
REDUCING_GAP = 3.0


class ImageDecodeError(ValueError):
    """An image could not be accepted; `code` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what a client may send; checked from the header before decoding pixels."""

    max_pixels: int = 40_000_000
    min_side: int = 8
    formats: frozenset[str] = field(default_factory=lambda: DEFAULT_FORMATS)


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    if not data:
        raise ImageDecodeError("empty_image", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb guard fires from the header, before any pixel is decoded.
        raise ImageDecodeError(
            "image_too_large", f"image has too many pixels; limit {limits.max_pixels}"
        ) from None
    except UnidentifiedImageError:
        raise ImageDecodeError(
            "unsupported_image", "the file is not an image in a supported format"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError("invalid_image", f"the image header is invalid: {exc}") from None
    if img.format not in limits.formats:
        raise ImageDecodeError(
            "unsupported_image",
            f"image format {img.format} is not accepted; accepted: {sorted(limits.formats)}",
        )
    if getattr(img, "n_frames", 1) > 1:
        raise ImageDecodeError("animated_image", "multi-frame images are not accepted")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageDecodeError(
            "image_too_large",
            f"image is {width}x{height} = {width * height} pixels; limit {limits.max_pixels}",
        )
    if min(width, height) < limits.min_side:
        raise ImageDecodeError(
            "image_too_small", f"image is {width}x{height}; each side must be >= {limits.min_side}"
        )
    return img


def _to_rgb_or_l(img: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB or L; transparency is composited on black like the dataset.

    Grayscale stays one band: resizing L and repeating it is bit-identical to resizing its RGB
    conversion (every band gets the same filter), at a third of the cost (MedPix is all L).
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        scaled = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(scaled, mode="L")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB; transparency is composited on black like the dataset."""
    img = _to_rgb_or_l(img)
    return img.convert("RGB") if img.mode != "RGB" else img


def _draft_scale(size: tuple[int, int], target: int) -> int:
    """Largest JPEG DCT scale 1/s that divides both sides exactly and keeps both >= target.

    Exact division keeps the geometry exact (no partial last pixel to stretch over the output).
    The target is square, so the rule is the same before and after EXIF rotation (which swaps
    width and height): drafting on the stored axes is safe.
    """
    width, height = size
    for scale in DRAFT_SCALES:
        if width % scale == 0 and height % scale == 0 and min(width, height) // scale >= target:
            return scale
    return 1


def _draft(img: Image.Image, target: int) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale (DCT domain), before any pixel is read."""
    if img.format != "JPEG":
        return
    scale = _draft_scale(img.size, target)
    if scale > 1:
        img.draft("RGB", (img.width // scale, img.height // scale))


def _decode(
    data: bytes, limits: ImageLimits, target_size: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    """Bytes → (upright RGB or L image, width × height from the header)."""
    img = _open_checked(data, limits)  # limits are checked on the full header size
    source_size = img.size
    try:
        if target_size is not None:
            _draft(img, target_size)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when nothing to do
        return _to_rgb_or_l(img), source_size
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError("invalid_image", f"the image data is corrupt: {exc}") from None


def decode_image(
    data: bytes, limits: ImageLimits | None = None, target_size: int | None = None
) -> Image.Image:
    """Bytes → upright 8-bit RGB image, or ImageDecodeError with a stable code.

    `target_size` opts in to JPEG DCT-domain downscaling (see `_draft_scale`): the image is then
    smaller than the file but still >= target_size on both sides, ready for a resize to that size.
    Training leaves it None (exact pixels); only callers that resize to target_size next pass it.
    """
    img, _ = _decode(data, limits or ImageLimits(), target_size)
    return _to_rgb(img)


def load_image_file(path: str | Path) -> Image.Image:
    """Training-side reader: the same decode path as serving, without client limits."""
    limits = ImageLimits(max_pixels=10**9, min_side=1)
    return decode_image(Path(path).read_bytes(), limits)


def normalise_coefficients(
    mean: Sequence[float], std: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b), shaped [3,1,1], with x·a + b ≈ (x/255 − mean)/std for uint8 x.

    Computed in float32 as a = f32(1/255)/std, b = −mean/std: when std is a power of two and
    mean/std is exact (the research 0.5/0.5) both roundings match the three-step arithmetic, so
    the result is bit-identical; otherwise it is within 1e-6 (asserted in the tests).
    """
    mean32 = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std32 = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return np.float32(1.0 / 255.0) / std32, -mean32 / std32


def image_to_array(
    img: Image.Image,
    size: int = 224,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    reducing_gap: float | None = None,
) -> np.ndarray:
    """RGB (or L) image → normalised CHW float32 array, the research transform.

    The resize stays in uint8 and the normalisation is one multiply-add pass (a uint8-indexed
    lookup table measured 4-10x slower in numpy: `take` widens the indices). `reducing_gap`
    (serving's fast path only) lets Pillow box-reduce large images before the bilinear filter.
    """
    if img.mode not in ("RGB", "L"):
        img = _to_rgb(img)
    resized = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=reducing_gap)
    pixels = np.asarray(resized)
    # CHW view of the uint8 planes (an L plane is repeated into 3 channels by broadcasting).
    planes = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    scale, offset = normalise_coefficients(mean, std)
    chw = np.empty((3, size, size), dtype=np.float32)
    np.multiply(planes, scale, out=chw)
    chw += offset
    return chw


@dataclass(frozen=True)
class ModelImage:
    """What serving needs from an image: the model input and the size the client sent."""

    pixels: np.ndarray  # f32 [3, size, size]
    source_size: tuple[int, int]  # width, height in the file's header, before any downscale

    @property
    def source_pixels(self) -> int:
        return self.source_size[0] * self.source_size[1]


def preprocess_image(
    data: bytes,
    size: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    limits: ImageLimits | None = None,
) -> ModelImage:
    """Serving's path: bytes → model input, cheaper than training's for large images.

    Same limits and error codes as `decode_image`. Images whose sides are all < 2×size (both
    datasets) give exactly training's pixels; larger ones are drafted / box-reduced first and
    stay within the tolerance stated in tests/app/contract/test_image_fast_path.py.
    """
    img, source_size = _decode(data, limits or ImageLimits(), size)
    return ModelImage(image_to_array(img, size, mean, std, REDUCING_GAP), source_size)
