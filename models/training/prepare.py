"""Everything a run needs before the first step: samples, tokenizer, in-memory split tensors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from app.contract.tasks import TaskSetSpec, task_set
from app.contract.text import TextEncoder
from models.data import Sample, WoundColumns, load_samples
from models.tokenizer import load_tokenizer, token_length_percentiles, train_wordpiece
from models.training.config import TrainConfig
from models.training.tensors import SplitTensors, build_split


@dataclass
class PreparedData:
    spec: TaskSetSpec
    train_samples: list[Sample]
    dev_samples: list[Sample]
    tokenizer: Tokenizer
    max_length: int
    train: SplitTensors
    dev: SplitTensors
    token_lengths: dict[str, int]  # train-text token-count percentiles


def load_split_samples(cfg: TrainConfig, split: str, limit: int | None) -> list[Sample]:
    """A split's samples; `limit` keeps a seeded random subset (in file order) for smoke runs."""
    columns = WoundColumns(**cfg.data.columns) if cfg.data.columns else None
    samples = load_samples(cfg.data.type, Path(cfg.data.root), split, columns)
    if limit is not None and limit < len(samples):
        keep = sorted(random.Random(cfg.seed).sample(range(len(samples)), limit))
        samples = [samples[i] for i in keep]
    return samples


def build_tokenizer(cfg: TrainConfig, train_texts: list[str]) -> Tokenizer:
    """The configured tokenizer file, or WordPiece trained on the training texts only."""
    tok = cfg.tokenizer
    if tok.path is not None:
        from models.training.pretrained import resolve_path

        return load_tokenizer(resolve_path(tok.path, "tokenizer.path"), tok.lowercase)
    return train_wordpiece(train_texts, tok.vocab_size, tok.lowercase, tok.min_frequency)


def prepare_data(
    cfg: TrainConfig,
    limit: int | None = None,
    tokenizer: Tokenizer | None = None,
    max_length: int | None = None,
) -> PreparedData:
    """Load both splits and encode them; `tokenizer`/`max_length` override the config's."""
    train_samples = load_split_samples(cfg, cfg.data.train_split, limit)
    dev_samples = load_split_samples(cfg, cfg.data.dev_split, limit)
    texts = [s.text for s in train_samples]
    tok = tokenizer if tokenizer is not None else build_tokenizer(cfg, texts)
    length = max_length if max_length is not None else cfg.tokenizer.max_length
    encoder = TextEncoder(Tokenizer.from_str(tok.to_str()), length)
    cache = cfg.data.cache_dir
    size = cfg.data.image_size
    return PreparedData(
        spec=task_set(cfg.data.type),
        train_samples=train_samples,
        dev_samples=dev_samples,
        tokenizer=tok,
        max_length=length,
        train=build_split(train_samples, encoder, size, cache),
        dev=build_split(dev_samples, encoder, size, cache),
        token_lengths=token_length_percentiles(tok, [encoder.normalise(t) for t in texts]),
    )


def encode_like(
    data: PreparedData,
    tokenizer: Tokenizer,
    max_length: int,
    image_size: int | None = None,
    cache_dir: str | None = None,
) -> PreparedData:
    """The same samples re-tokenised (the teacher's inputs during distillation); the same
    images, or the same files resized to `image_size` when the teacher reads another size."""
    encoder = TextEncoder(Tokenizer.from_str(tokenizer.to_str()), max_length)
    same_size = image_size is None or image_size == data.train.pixels.shape[1]

    def split(samples: list[Sample], tensors: SplitTensors) -> SplitTensors:
        if same_size:
            return build_split(samples, encoder, pixels=tensors.pixels)
        return build_split(samples, encoder, int(image_size or 0), cache_dir)

    return PreparedData(
        spec=data.spec,
        train_samples=data.train_samples,
        dev_samples=data.dev_samples,
        tokenizer=tokenizer,
        max_length=max_length,
        train=split(data.train_samples, data.train),
        dev=split(data.dev_samples, data.dev),
        token_lengths=data.token_lengths,
    )
