"""The dev split as model inputs, prepared exactly as training and serving prepare them.

Images go through the training image cache (same decoder and bilinear resize as
`app.contract.image.image_to_array`, bit-identical), texts through `TextEncoder` with the
checkpoint's own tokenizer and max length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from app.contract.text import TextEncoder
from models.data import Sample, WoundColumns, load_samples
from models.data.images import normalise
from models.training.tensors import build_split


@dataclass(frozen=True)
class DevSet:
    samples: list[Sample]
    pixel_values: np.ndarray  # f32 [N,3,H,W]
    input_ids: np.ndarray  # i64 [N,L]
    attention_mask: np.ndarray  # i64 [N,L]
    labels: np.ndarray  # i64 [N,2]

    def __len__(self) -> int:
        return len(self.samples)

    def rows(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.pixel_values[:count],
            self.input_ids[:count],
            self.attention_mask[:count],
        )


@dataclass(frozen=True)
class DataSource:
    """Where a checkpoint's dev data lives (from its training config, overridable)."""

    task_set: str
    root: Path
    split: str = "dev"
    image_size: int = 224
    cache_dir: str | None = None
    columns: dict[str, str] | None = None

    @classmethod
    def from_training_config(
        cls, task_set: str, training_config: Mapping[str, Any], root: str | Path | None = None
    ) -> DataSource:
        data = dict(training_config.get("data") or {})
        chosen = root if root is not None else data.get("root")
        if chosen is None:
            raise ValueError(
                "the checkpoint's training config names no data root; pass --data-root"
            )
        return cls(
            task_set=task_set,
            root=Path(chosen),
            split=str(data.get("dev_split") or "dev"),
            image_size=int(data.get("image_size") or 224),
            cache_dir=data.get("cache_dir"),
            columns=dict(data["columns"]) if data.get("columns") else None,
        )


def load_dev_set(
    source: DataSource, tokenizer_json: str, max_length: int, limit: int | None = None
) -> DevSet:
    """The split's samples (first `limit` when given) encoded for the model."""
    columns = WoundColumns(**source.columns) if source.columns else None
    samples = load_samples(source.task_set, source.root, source.split, columns)
    if limit is not None:
        samples = samples[:limit]
    encoder = TextEncoder(Tokenizer.from_str(tokenizer_json), max_length)
    cache = source.cache_dir
    if cache is not None and not Path(cache).parent.is_dir():
        cache = None  # no training run here: do not create cache folders in odd places
    split = build_split(samples, encoder, source.image_size, cache)
    return DevSet(
        samples=samples,
        pixel_values=normalise(split.pixels),
        input_ids=split.input_ids.numpy(),
        attention_mask=split.attention_mask.numpy(),
        labels=split.labels.numpy(),
    )
