"""A split held in memory as tensors: cached uint8 images, token ids, labels.

The whole dataset fits in RAM (≈150 KB per 224² image), so batches are index slices — no
DataLoader workers, no per-epoch decoding, and shuffling is one seeded permutation per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from app.contract.text import TextEncoder
from models.data import Sample
from models.data.images import load_resized, normalise
from models.training.augment import random_resized_crops


@dataclass
class Batch:
    index: torch.Tensor  # int64 [B] rows of the split
    pixel_values: torch.Tensor  # f32 [B,3,H,W]
    input_ids: torch.Tensor  # i64 [B,L]
    attention_mask: torch.Tensor  # i64 [B,L]
    labels: tuple[torch.Tensor, torch.Tensor]  # i64 [B] each


@dataclass
class SplitTensors:
    pixels: np.ndarray  # uint8 [N,H,W,3]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor  # i64 [N,2]
    # The empty text as the service encodes it (its fallback, "No description available"):
    # ids and mask [1,L]. Text dropout and the image-only view feed exactly this row.
    empty_text: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image_only(self) -> SplitTensors:
        """The same rows with every text replaced by the empty-text row (the evaluation's
        image-only condition: a client that sends no text)."""
        if self.empty_text is None:
            raise ValueError("this split was built without its empty-text row")
        ids, mask = self.empty_text
        n = len(self)
        return SplitTensors(
            self.pixels, ids.expand(n, -1), mask.expand(n, -1), self.labels, self.empty_text
        )

    def text_only(self) -> SplitTensors:
        """The same rows with every image black (the evaluation's text-only condition)."""
        return SplitTensors(
            np.zeros_like(self.pixels),
            self.input_ids,
            self.attention_mask,
            self.labels,
            self.empty_text,
        )

    def batch(
        self,
        rows: torch.Tensor,
        flip: torch.Tensor | None = None,
        crop: tuple[float, torch.Generator] | None = None,
    ) -> Batch:
        """Rows `rows` as model inputs; `flip` (bool [B]) mirrors those images horizontally,
        `crop` (min area share, generator) takes random resized crops first."""
        pixels = self.pixels[rows.numpy()]
        if crop is not None:
            pixels = random_resized_crops(pixels, *crop)
        if flip is not None and bool(flip.any()):
            pixels = pixels.copy()
            chosen = flip.numpy()
            pixels[chosen] = pixels[chosen][:, :, ::-1, :]
        mask = self.attention_mask[rows]
        # Cut the padding every row of this batch has: attention ignores it anyway, and
        # captions are far shorter than max_length (the served graph does the same).
        length = max(int(mask.sum(dim=1).max()), 2) if len(rows) else mask.shape[1]
        return Batch(
            index=rows,
            pixel_values=torch.from_numpy(normalise(pixels)),
            input_ids=self.input_ids[rows, :length],
            attention_mask=mask[:, :length],
            labels=(self.labels[rows, 0], self.labels[rows, 1]),
        )

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        hflip: bool = False,
        crop_min_scale: float = 1.0,
    ) -> Iterator[Batch]:
        """Shuffled (when `generator` is given) batches; flips and crops (when
        `crop_min_scale` < 1) drawn from the same generator."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            flip = (
                torch.rand(len(rows), generator=generator) < 0.5
                if hflip and generator is not None
                else None
            )
            crop = (
                (crop_min_scale, generator)
                if crop_min_scale < 1.0 and generator is not None
                else None
            )
            yield self.batch(rows, flip, crop)


def encode_texts(encoder: TextEncoder, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = encoder.encode(list(texts))
    return torch.from_numpy(encoded.input_ids), torch.from_numpy(encoded.attention_mask)


def build_split(
    samples: Sequence[Sample],
    encoder: TextEncoder,
    image_size: int = 224,
    cache_dir: str | None = None,
    pixels: np.ndarray | None = None,
) -> SplitTensors:
    """Tensors for `samples`; `pixels` reuses already-loaded images (same rows, same order)."""
    if pixels is None:
        pixels = load_resized([s.image_path for s in samples], image_size, cache_dir)
    ids, mask = encode_texts(encoder, [s.text for s in samples])
    labels = torch.tensor([list(s.labels) for s in samples], dtype=torch.int64)
    return SplitTensors(pixels, ids, mask, labels, encode_texts(encoder, [""]))
