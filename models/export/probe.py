"""Inputs that judge an exported graph: parity batches and the self-test sample.

With a dataset they come from its dev split. Without one (a research checkpoint imported with
no `--calibrate`) they are synthetic but go through the real serving contract: seeded PNG
images decoded and resized by `app.contract.image`, and texts of many lengths — empty (the
fallback), short, and longer than the maximum (truncation) — encoded by `TextEncoder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from app.contract.image import image_to_array, load_image_file
from app.contract.text import TextEncoder
from models.data import Sample
from models.export.dev_data import DevSet
from models.export.selftest import choose_sample

PROBE_ROWS = 32  # parity runs at batch 1, 7 and 32
_PROBE_TEXTS = (
    "",
    "Axial CT of the chest.",
    "T2-weighted MR image shows a hyperintense lesion in the left frontal lobe.",
    "Red, swollen skin around a shallow wound with yellow slough; the patient reports pain.",
    "Contrast-enhanced scan: 3 cm mass, irregular margins, no calcification, mild oedema.",
    "Coronal image. " * 200,  # far beyond any maximum length: exercises truncation
    "sagittal",
    "Burn on the forearm with blisters, about 4 x 5 cm, partial thickness.",
)


@dataclass(frozen=True)
class ProbeSet:
    """Contract-prepared rows for parity and the sample the bundle's self-test records."""

    pixel_values: np.ndarray  # f32 [N,3,H,W]
    input_ids: np.ndarray  # i64 [N,L]
    attention_mask: np.ndarray  # i64 [N,L]
    sample: Sample  # self-test image + text
    truth: dict[str, str] | None  # the sample's labels, when it has any
    origin: str  # "dev" (the dev split) or "synthetic"

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.pixel_values, self.input_ids, self.attention_mask


def dev_probe(dev: DevSet, labels: dict[str, list[str]]) -> ProbeSet:
    """All dev rows; the self-test sample is the smallest dev image (keeps bundles small)."""
    sample = choose_sample(dev.samples)
    row = dev.labels[dev.samples.index(sample)]
    truth = {task: names[int(row[i])] for i, (task, names) in enumerate(labels.items())}
    return ProbeSet(dev.pixel_values, dev.input_ids, dev.attention_mask, sample, truth, "dev")


def _synthetic_image(path: Path, seed: int) -> None:
    """A seeded, smooth-plus-noise RGB picture of an odd size (the resize path is exercised)."""
    rng = np.random.default_rng(seed)
    height, width = 150 + 7 * seed, 190 - 5 * seed
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [np.sin(xx / (9 + c + seed)) * np.cos(yy / (13 + 2 * c)) for c in range(3)], axis=-1
    )
    pixels = 127.5 * (base + 1) + rng.normal(0.0, 25.0, base.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(path)


def synthetic_probe(
    tokenizer_json: str, max_length: int, image_size: int, workdir: Path
) -> ProbeSet:
    """PROBE_ROWS rows from seeded images and texts, prepared by the serving contract."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(4):
        path = workdir / f"probe_{seed}.png"
        _synthetic_image(path, seed)
        paths.append(path)
    images = [image_to_array(load_image_file(p), image_size) for p in paths]
    texts = [_PROBE_TEXTS[i % len(_PROBE_TEXTS)] for i in range(PROBE_ROWS)]
    encoded = TextEncoder(Tokenizer.from_str(tokenizer_json), max_length).encode(texts)
    pixels = np.stack([images[i % len(images)] for i in range(PROBE_ROWS)])
    sample = Sample(image_path=paths[1], text=_PROBE_TEXTS[2], labels=(0, 0), group="synthetic")
    return ProbeSet(pixels, encoded.input_ids, encoded.attention_mask, sample, None, "synthetic")
