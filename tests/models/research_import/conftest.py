"""Research-layout models with seeded weights, saved as the research code saves them.

Full-size research backbones take minutes to export, so the parity tests register tiny
backbones under extra friendly names (one per family) in the same preset tables the importer
reads, with the real uncased BERT vocabulary (30,522 rows) so the default tokenizer path is
exercised. Heads are widened so probabilities are far from uniform: a graph that mishandles
any input shows up well above the 1e-4 tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from models.backbones import TEXT_PRESETS, VISION_PRESETS
from models.config import ModelConfig
from models.multitask import MultiTaskModel
from models.research_import import tokenizer_source

IMAGE_SIZE = 224
TINY_VISION: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny-vit": (
        "vit",
        dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             patch_size=32, image_size=IMAGE_SIZE, initializer_range=0.5),
    ),
    "tiny-deit": (
        "deit",
        dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
             patch_size=32, image_size=IMAGE_SIZE, initializer_range=0.5),
    ),
    "tiny-mobilevit": (
        "mobilevit",
        dict(image_size=IMAGE_SIZE, hidden_sizes=[16, 24, 32],
             neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 40], num_attention_heads=2,
             expand_ratio=2.0),
    ),
}  # fmt: skip
TINY_TEXT: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny-bert": (
        "bert",
        dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
             initializer_range=0.5),
    ),
    "tiny-distilbert": (
        "distilbert",
        dict(dim=16, n_layers=1, n_heads=2, hidden_dim=32, initializer_range=0.5),
    ),
}  # fmt: skip


@pytest.fixture
def tiny_backbones(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register the tiny friendly names (uncased BERT vocabulary) for one test."""
    for name, preset in TINY_VISION.items():
        monkeypatch.setitem(VISION_PRESETS, name, preset)
    for name, preset in TINY_TEXT.items():
        monkeypatch.setitem(TEXT_PRESETS, name, preset)
    monkeypatch.setattr(
        tokenizer_source,
        "UNCASED_BERT_TEXT",
        tokenizer_source.UNCASED_BERT_TEXT | set(TINY_TEXT),
    )
    yield


def research_yaml(
    path: Path,
    *,
    vision: str = "tiny-vit",
    text: str = "tiny-bert",
    fusion: str = "cross_attention",
    dataset: str | None = "medpix",
    fusion_dim: int = 16,
    heads: int = 2,
    teacher_layers: int = 3,
    extra_fusion: dict[str, Any] | None = None,
) -> Path:
    """A research YAML (docs/spec.md §7 schema); both sections describe the same tiny backbones."""
    section = {"vision": vision, "text": text, "fusion_dim": fusion_dim, "fusion_heads": heads}
    config: dict[str, Any] = {
        "teacher": {**section, "fusion_layers": teacher_layers, "dropout": 0.0962},
        "student": {**section, "fusion_layers": 1, "dropout": 0.2924},
        "training": {"teacher_epochs": 3, "student_epochs": 10, "alpha": 0.9569, "T": 4.7},
        "fusion": {"type": fusion, **(extra_fusion or {})},
        "loss": {"type": "combined"},
        "logging": {"log_dir": "logs/test"},
    }
    if dataset is not None:
        root = "datasets/MedPix-2-0" if dataset == "medpix" else "datasets/Wound-1-0"
        config["data"] = {"type": dataset, "root": root, "batch_size": 16}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def seeded_model(config: ModelConfig, seed: int = 0) -> MultiTaskModel:
    """A model in the research layout with seeded weights and peaked outputs."""
    torch.manual_seed(seed)
    model = MultiTaskModel(config).eval()
    with torch.no_grad():
        for head in (model.head_modality, model.head_location):
            head.head[1].weight.normal_(0.0, 5.0)
    return model


def save_research_checkpoint(model: MultiTaskModel, path: Path) -> Path:
    """Exactly what the research code writes: torch.save(model.state_dict())."""
    torch.save(model.state_dict(), path)
    return path
