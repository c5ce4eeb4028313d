"""Decoded, resized uint8 images cached once per dataset; normalised on the fly.

Decoding and resizing every image every epoch would dominate CPU training time. The cache holds
exactly the pixels `app.contract.image.image_to_array` would resize to (same decoder, same
bilinear resize), and `normalise` applies its float32 arithmetic, so training inputs are
bit-identical to what serving computes (asserted in tests on real images).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from app.contract.image import load_image_file

CACHE_VERSION = "v1"


def resize_uint8(path: str | Path, size: int = 224) -> np.ndarray:
    """HWC uint8 pixels after the serving decoder and the research resize."""
    img = load_image_file(path)
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalise(pixels: np.ndarray, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """[B,H,W,3] or [H,W,3] uint8 → float32 CHW in [-1, 1], image_to_array's arithmetic."""
    scaled = pixels.astype(np.float32) * np.float32(1.0 / 255.0)
    normalised = (scaled - np.float32(mean)) / np.float32(std)
    axes = (0, 3, 1, 2) if normalised.ndim == 4 else (2, 0, 1)
    return np.ascontiguousarray(normalised.transpose(axes), dtype=np.float32)


def cache_key(paths: Sequence[Path], size: int) -> str:
    """Hash of the file list, sizes/mtimes and target size: a changed file invalidates."""
    digest = hashlib.sha256(f"{CACHE_VERSION}:{size}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def load_resized(
    paths: Sequence[Path], size: int = 224, cache_dir: str | Path | None = None
) -> np.ndarray:
    """[N,size,size,3] uint8 for `paths`, read from / written to `cache_dir` when given."""
    target: Path | None = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"images-{cache_key(paths, size)}-{len(paths)}x{size}.npy"
        if target.is_file():
            return np.load(target)
    pixels = (
        np.stack([resize_uint8(p, size) for p in paths])
        if paths
        else np.zeros((0, size, size, 3), dtype=np.uint8)
    )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, pixels)
        tmp.replace(target)
    return pixels
