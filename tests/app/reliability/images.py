"""Odd but real image files that clients send, built with Pillow (no fixtures on disk)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.app.helpers import WOUND_IMAGE, encode


def sixteen_bit_png() -> bytes:
    ramp = np.linspace(0, 65535, 48 * 48, dtype=np.uint16).reshape(48, 48)
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    return encode(img)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (48, 48), (200, 20, 40, 10)), "JPEG")


def palette_png_with_transparency() -> bytes:
    img = Image.new("P", (48, 48), 0)
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.paste(1, (0, 0, 24, 48))
    img.paste(2, (24, 0, 48, 48))
    return encode(img, transparency=0)


def exif_rotated_jpeg() -> bytes:
    """64×32 pixels stored; EXIF orientation 6 says 'display rotated 90° clockwise'."""
    img = Image.new("RGB", (64, 32), (30, 160, 90))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif.tobytes())


def animated_png() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)


def truncated_jpeg() -> bytes:
    return WOUND_IMAGE.read_bytes()[:3000]
