"""Preprocessing is the contract's transform; the pool is bounded; postprocessing labels."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from app.contract.image import ImageLimits, decode_image, image_to_array, preprocess_image
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder
from app.errors import QueueFull
from app.postprocess import postprocess
from app.preprocess import InputSpec, PreprocessPool, prepare
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT


def test_prepare_is_the_contract_transform(tiny_bundle_dir: Path) -> None:
    bundle = tiny_bundle_dir / "medpix-student"
    manifest = Manifest.load(bundle)
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, pre.max_text_length)
    item = prepare(
        MEDPIX_IMAGE.read_bytes(),
        MEDPIX_TEXT,
        InputSpec.from_manifest(manifest, encoder, ImageLimits()),
    )
    img = decode_image(MEDPIX_IMAGE.read_bytes())
    served = preprocess_image(MEDPIX_IMAGE.read_bytes(), pre.image_size, pre.mean, pre.std)
    np.testing.assert_array_equal(item.pixel_values, served.pixels)
    # 32 px from a 280×320 slice: the box-reduced fast path, within a level of training's
    exact = image_to_array(img, pre.image_size, pre.mean, pre.std)
    assert float(np.abs(item.pixel_values - exact).mean()) < 2 / 255
    encoded = encoder.encode([MEDPIX_TEXT])
    np.testing.assert_array_equal(item.input_ids, encoded.input_ids[0])
    np.testing.assert_array_equal(item.attention_mask, encoded.attention_mask[0])
    assert (
        item.image_pixels == img.width * img.height and item.text_tokens == encoded.token_counts[0]
    )


def test_pool_backlog_is_bounded() -> None:
    pool = PreprocessPool(workers=1, max_pending=2)
    release = threading.Event()

    async def main() -> None:
        held = [asyncio.create_task(pool.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await pool.run(sum, [1, 2])
        release.set()
        results = await asyncio.gather(*held)
        assert [r for r, _ in results] == [True, True]
        value, seconds = await pool.run(sum, [1, 2])
        assert value == 3 and seconds >= 0

    try:
        asyncio.run(main())
    finally:
        release.set()
        pool.shutdown()


def test_postprocess_labels_and_threshold(tiny_bundle_dir: Path) -> None:
    manifest = Manifest.load(tiny_bundle_dir / "medpix-student")
    outputs = {
        "probs_modality": np.array([0.3, 0.7], dtype=np.float32),
        "probs_location": np.array([0.1, 0.2, 0.3, 0.35, 0.05], dtype=np.float32),
        "modality_weights": np.array([0.25, 0.75], dtype=np.float32),
    }
    pred = postprocess(manifest, outputs, low_confidence_threshold=0.5)
    assert pred.tasks["modality"].label == "MR" and not pred.tasks["modality"].low_confidence
    location = pred.tasks["location"]
    assert location.label == "Thorax" and location.low_confidence
    assert list(location.probabilities) == list(manifest.task("location").labels)
    assert pred.modality_weights == {"image": 0.25, "text": 0.75}
    with pytest.raises(ValueError):
        postprocess(manifest, {**outputs, "probs_modality": np.ones(3)}, 0.5)


def test_postprocess_gives_plain_floats_and_the_first_of_tied_maxima(tiny_bundle_dir: Path) -> None:
    """As numpy's argmax did: a tie goes to the first label; values stay the float32 numbers."""
    manifest = Manifest.load(tiny_bundle_dir / "medpix-student")
    location = np.array([0.1, 0.4, 0.4, 0.05, 0.05], dtype=np.float32)
    outputs = {"probs_modality": np.array([0.5, 0.5], np.float32), "probs_location": location}
    pred = postprocess(manifest, outputs, low_confidence_threshold=0.3)
    labels = manifest.task("location").labels
    assert pred.tasks["location"].label == labels[int(np.argmax(location))] == labels[1]
    assert pred.tasks["modality"].label == manifest.task("modality").labels[0]
    probability = pred.tasks["location"].probability
    assert type(probability) is float and probability == float(np.float32(0.4))
    assert all(type(p) is float for p in pred.tasks["location"].probabilities.values())
