"""The shared image preprocessing: research transform, odd modes, limits before decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.contract.image import ImageDecodeError, ImageLimits, decode_image, image_to_array


def _png(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def test_research_transform_matches_hand_computation() -> None:
    img = Image.new("RGB", (4, 4), (255, 0, 51))
    arr = image_to_array(img, size=2)
    assert arr.shape == (3, 2, 2) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[:, 0, 0], [1.0, -1.0, 51 / 255 * 2 - 1], atol=1e-6)


def test_real_dataset_image_decodes(medpix_root) -> None:  # type: ignore[no-untyped-def]
    path = next((medpix_root / "images").glob("*.png"))
    img = decode_image(path.read_bytes())
    assert img.mode == "RGB"
    arr = image_to_array(img)
    assert arr.shape == (3, 224, 224)
    assert float(arr.min()) >= -1.0 and float(arr.max()) <= 1.0


@pytest.mark.parametrize(
    "mode,color", [("L", 128), ("I;16", 65535), ("CMYK", (0, 0, 0, 0)), ("LA", (255, 255))]
)
def test_modes_become_rgb(mode: str, color: object) -> None:
    img = Image.new(mode, (16, 16), color)  # type: ignore[arg-type]
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    out = decode_image(buf.getvalue())
    assert out.mode == "RGB" and out.size == (16, 16)
    if mode == "I;16":
        assert out.getpixel((0, 0)) == (255, 255, 255)
    if mode == "LA":  # fully opaque white stays white
        assert out.getpixel((0, 0)) == (255, 255, 255)


def test_palette_transparency_composited_on_black() -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 255, 255] * 256)
    out = decode_image(_png(img, transparency=0))
    assert out.getpixel((0, 0)) == (0, 0, 0)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    assert decode_image(buf.getvalue()).size == (20, 40)


def test_pixel_limit_checked_before_decoding() -> None:
    big = _png(Image.new("L", (3000, 3000), 0))
    with pytest.raises(ImageDecodeError) as err:
        decode_image(big, ImageLimits(max_pixels=1_000_000))
    assert err.value.code == "image_too_large"


@pytest.mark.parametrize(
    "payload,code",
    [
        (b"", "empty_image"),
        (b"\x00\x01garbage" * 10, "unsupported_image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "unsupported_image"),
    ],
)
def test_bad_bytes_have_stable_codes(payload: bytes, code: str) -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode_image(payload)
    assert err.value.code == code


def test_truncated_png_is_invalid() -> None:
    data = _png(Image.effect_noise((64, 64), 50))
    with pytest.raises(ImageDecodeError) as err:
        decode_image(data[: len(data) // 2])
    assert err.value.code == "invalid_image"


def test_tiny_image_rejected() -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode_image(_png(Image.new("RGB", (1, 1))))
    assert err.value.code == "image_too_small"


def test_decompression_bomb_rejected_from_header() -> None:
    """A 20000x20000 PNG: Pillow's guard trips in Image.open, before pixels are decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageDecodeError) as err:
        decode_image(png)
    assert err.value.code == "image_too_large"


def test_chw_normalisation_is_bit_identical_to_hwc_broadcasting(medpix_root) -> None:  # type: ignore[no-untyped-def]
    """The fast CHW path computes exactly the research formula done the obvious (HWC) way."""
    for path in sorted((medpix_root / "images").glob("*.png"))[:5]:
        img = decode_image(path.read_bytes())
        resized = np.asarray(img.resize((224, 224), Image.Resampling.BILINEAR), np.float32)
        half = np.float32(0.5)
        hwc = (resized * np.float32(1.0 / 255.0) - half) / half
        assert np.array_equal(image_to_array(img), hwc.transpose(2, 0, 1))
