"""Images no medical task set contains, to judge the domain check: blank, black, noise and
screenshots of text. Export reports how many the fitted check flags, and `fusionserve evaluate`
reports the same set, so both numbers describe one fixed, seeded set.

Torch-free (Pillow and numpy only): the evaluation runs where the service runs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 320  # the datasets' long side
KINDS = ("blank", "black", "noise", "text_screenshot")
_LINES = (
    "Quarterly report - revenue by region",
    "def predict(image, text): return model.run(image, text)",
    "Meeting notes: agree the release plan before Friday.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "ERROR 503 Service Unavailable - retry after 30 seconds",
    "Invoice #4411  total due  $1,250.00",
)


@dataclass(frozen=True)
class SyntheticImage:
    name: str  # e.g. "noise_uniform_1"
    kind: str  # one of KINDS
    png: bytes


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _flat(value: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.uint8), (SIZE, SIZE, 3)).copy()


def _screenshot(seed: int, dark: bool, font_size: int) -> np.ndarray:
    """Lines of text as a document or terminal screenshot shows them."""
    background, ink = ((18, 18, 18), (230, 230, 230)) if dark else ((255, 255, 255), (20, 20, 20))
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    rng = np.random.default_rng(seed)
    y = 8
    while y < SIZE - font_size:
        draw.text((8, y), _LINES[int(rng.integers(len(_LINES)))], fill=ink, font=font)
        y += int(font_size * 1.5)
    return np.asarray(image)


def synthetic_images(seed: int = 0) -> list[SyntheticImage]:
    """16 images, four of each kind, the same for every call with the same seed."""
    rng = np.random.default_rng(seed)
    arrays: list[tuple[str, str, np.ndarray]] = [
        ("blank_white", "blank", _flat((255, 255, 255))),
        ("blank_light_grey", "blank", _flat((200, 200, 200))),
        ("blank_mid_grey", "blank", _flat((128, 128, 128))),
        ("blank_beige", "blank", _flat((235, 225, 205))),
        ("black", "black", _flat((0, 0, 0))),
        ("black_near", "black", _flat((8, 8, 8))),
        ("black_dark_grey", "black", _flat((24, 24, 24))),
        ("black_dark_blue", "black", _flat((5, 5, 25))),
        ("noise_uniform_rgb", "noise", rng.integers(0, 256, (SIZE, SIZE, 3))),
        ("noise_uniform_grey", "noise", np.repeat(rng.integers(0, 256, (SIZE, SIZE, 1)), 3, 2)),
        ("noise_gaussian", "noise", np.clip(rng.normal(128, 40, (SIZE, SIZE, 3)), 0, 255)),
        ("noise_salt_pepper", "noise", np.repeat(rng.choice([0, 255], (SIZE, SIZE, 1)), 3, 2)),
        ("text_light_small", "text_screenshot", _screenshot(1, False, 12)),
        ("text_light_large", "text_screenshot", _screenshot(2, False, 22)),
        ("text_dark_small", "text_screenshot", _screenshot(3, True, 12)),
        ("text_dark_large", "text_screenshot", _screenshot(4, True, 22)),
    ]
    return [SyntheticImage(name, kind, _png(array)) for name, kind, array in arrays]
