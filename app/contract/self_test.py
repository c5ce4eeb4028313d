"""The self-test sample's graph inputs, computed one way for export, verify and serve.

Export records the outputs a bundle must give for its self-test sample; verify and the
service's warm-up recompute them. All three must prepare the sample exactly as `/predict`
does (serving's image path, the bundle's tokenizer and empty-text fallback), or a correct
bundle would fail its own check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.contract.graph import INPUT_NAMES
from app.contract.image import ImageLimits, preprocess_image
from app.contract.manifest import Preprocessing
from app.contract.text import TextEncoder

# The sample ships with the bundle: no client limits apply to it.
SELF_TEST_LIMITS = ImageLimits(max_pixels=10**9, min_side=1)


def self_test_inputs(
    image: bytes, text: str, tokenizer_path: Path, pre: Preprocessing
) -> dict[str, np.ndarray]:
    """Batch-of-one graph inputs (by input name) exactly as the service computes them."""
    pixels = preprocess_image(image, pre.image_size, pre.mean, pre.std, SELF_TEST_LIMITS).pixels
    encoder = TextEncoder.from_file(tokenizer_path, pre.max_text_length, pre.empty_text)
    encoded = encoder.encode([text])
    values = (pixels[None], encoded.input_ids, encoded.attention_mask)
    return dict(zip(INPUT_NAMES, values, strict=True))
