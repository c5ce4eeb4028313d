"""Tiny custom backbone configs so model tests build and run in milliseconds."""

from __future__ import annotations

from typing import Any

import torch

from models.config import ModelConfig

TINY_VIT: dict[str, Any] = {
    "type": "vit",
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "image_size": 32,
    "patch_size": 16,
}
TINY_MOBILEVIT: dict[str, Any] = {
    "type": "mobilevit",
    "image_size": 64,
    "hidden_sizes": [16, 24, 32],
    "neck_hidden_sizes": [8, 8, 16, 16, 24, 24, 40],
    "num_attention_heads": 2,
    "expand_ratio": 2.0,
}
TINY_BERT: dict[str, Any] = {
    "type": "bert",
    "hidden_size": 24,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "vocab_size": 120,
    "max_position_embeddings": 64,
}


def tiny_config(**overrides: Any) -> ModelConfig:
    kwargs: dict[str, Any] = {
        "vision": TINY_VIT,
        "text": TINY_BERT,
        "fusion_dim": 16,
        "fusion_heads": 4,
        **overrides,
    }
    return ModelConfig(**kwargs)


def tiny_batch(
    batch: int = 3, image_size: int = 32, seq_len: int = 12, vocab: int = 120, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pixel_values in [-1, 1], input_ids with [CLS]=1 first, attention_mask with padding)."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(batch, 3, image_size, image_size, generator=g) * 2 - 1
    ids = torch.randint(5, vocab, (batch, seq_len), generator=g)
    ids[:, 0] = 1
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    mask[0, seq_len // 2 :] = 0
    ids[mask == 0] = 0
    return pixels, ids, mask
