"""Image-only pretraining: it really teaches the backbone, from pixels alone."""

from __future__ import annotations

import numpy as np
import torch
from transformers import ResNetConfig, ResNetModel

from models.training.config import OptimConfig, VisionPretrainConfig
from models.training.tensors import SplitTensors
from models.training.vision_pretrain import pretrain_vision


def _split(n: int, seed: int) -> SplitTensors:
    """Task 1 = bright vs dark image, task 2 = which quadrant holds a white square; the
    token ids are constant, so only pixels can tell the classes apart."""
    rng = np.random.default_rng(seed)
    bright = rng.integers(0, 2, n)
    quadrant = rng.integers(0, 4, n)
    pixels = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8)
    pixels[bright == 1] += 120
    for i, q in enumerate(quadrant):
        top, left = 16 * (q // 2), 16 * (q % 2)
        pixels[i, top + 4 : top + 12, left + 4 : left + 12] = 255
    ids = torch.ones(n, 4, dtype=torch.int64)
    labels = torch.tensor(np.stack([bright, quadrant], axis=1), dtype=torch.int64)
    return SplitTensors(pixels, ids, torch.ones_like(ids), labels)


def test_backbone_learns_both_tasks_from_pixels() -> None:
    torch.manual_seed(0)
    vision = ResNetModel(
        ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    )
    before = {k: v.clone() for k, v in vision.state_dict().items()}
    history = pretrain_vision(
        vision,
        (2, 4),
        _split(256, 0),
        _split(64, 1),
        ("modality", "location"),
        VisionPretrainConfig(epochs=6, lr=1e-2),
        OptimConfig(),
        32,
        seed=3,
        class_weights=None,
        progress=False,
    )
    assert [h["epoch"] for h in history] == list(range(1, 7))
    first, last = history[0]["dev_image_only"], history[-1]["dev_image_only"]
    assert last["modality"]["accuracy"] >= 0.95
    assert last["location"]["accuracy"] >= 0.8
    assert last["location"]["macro_f1"] > first["location"]["macro_f1"] + 0.3
    changed = [k for k, v in vision.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # trained in place
