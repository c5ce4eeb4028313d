"""Tiny real models for export tests: random weights, real tokenizer, real dev samples.

Weights are scaled up (initializer_range 0.5) and the test temperatures are below 1 so the
probabilities are far from uniform: a graph that mishandles any input shows up well above the
1e-4 parity tolerance instead of hiding in near-constant outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer

from app.contract.tasks import task_set
from models.checkpoint import save_checkpoint
from models.config import ModelConfig
from models.data import load_samples
from models.export.dev_data import DataSource, DevSet, load_dev_set
from models.multitask import MultiTaskModel
from models.tokenizer import train_wordpiece

MAX_LENGTH = 48
IMAGE_SIZE = 224  # the real contract size; patch 32 keeps the ViT at 49 tokens
TEST_TEMPERATURES = (0.5, 0.25)


def tiny_export_config(fusion: str, vocab_size: int) -> ModelConfig:
    return ModelConfig(
        vision={
            "type": "vit",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "patch_size": 32,
            "image_size": IMAGE_SIZE,
            "initializer_range": 0.5,
        },
        text={
            "type": "bert",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": MAX_LENGTH,
            "initializer_range": 0.5,
        },
        fusion_dim=16,
        fusion_type=fusion,
        fusion_heads=2,
        fusion_layers=1,
        num_classes=(2, 5),
        text_vocab_size=vocab_size,
    )


def tiny_model(fusion: str, vocab_size: int, seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    model = MultiTaskModel(tiny_export_config(fusion, vocab_size)).eval()
    with torch.no_grad():  # heads at research init give near-uniform outputs; widen them
        for head in (model.head_modality, model.head_location):
            head.head[1].weight.normal_(0.0, 1.0)
    return model


@pytest.fixture(scope="session")
def medpix_tokenizer(medpix_root: Path) -> Tokenizer:
    texts = [s.text for s in load_samples("medpix", medpix_root, "train")]
    return train_wordpiece(texts, vocab_size=600)


@pytest.fixture(scope="session")
def medpix_dev32(medpix_root: Path, medpix_tokenizer: Tokenizer) -> DevSet:
    """The first 32 real MedPix dev samples, preprocessed as training and serving do."""
    source = DataSource(task_set="medpix", root=medpix_root)
    return load_dev_set(source, medpix_tokenizer.to_str(), MAX_LENGTH, limit=32)


def checkpoint_extra(tokenizer: Tokenizer, data_root: Path) -> dict[str, Any]:
    spec = task_set("medpix")
    return {
        "task_set": "medpix",
        "role": "student",
        "tokenizer_json": tokenizer.to_str(),
        "max_text_length": MAX_LENGTH,
        "labels": {t: list(spec.labels(t)) for t in spec.task_names},
        "training_config": {
            "name": "tiny",
            "data": {"type": "medpix", "root": str(data_root), "dev_split": "dev"},
            "seed": 0,
            "provenance": {"weights": "random (test)"},
        },
        "metrics": {"epoch": 0},
    }


@pytest.fixture(scope="session")
def tiny_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, medpix_tokenizer: Tokenizer, medpix_root: Path
) -> Path:
    model = tiny_model("cross_attention", medpix_tokenizer.get_vocab_size())
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, model, model.cfg, checkpoint_extra(medpix_tokenizer, medpix_root))
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """A bundle written by the real `fusionserve export --int8` on the full MedPix dev split."""
    from fusionserve.cli import main

    out = tmp_path_factory.mktemp("exported") / "medpix-tiny"
    rc = main(
        [
            "export",
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--int8",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    return out
