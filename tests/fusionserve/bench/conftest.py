"""Fixtures for the benchmark's smoke test: tiny bundles and a tiny matching torch checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """medpix-student (with model.int8.onnx) and medpix-teacher tiny bundles."""
    pytest.importorskip("onnx", reason="building the tiny bundle needs the onnx package")
    from tests.fixtures.tiny_bundle import build_tiny_bundle

    root = tmp_path_factory.mktemp("bench-bundles")
    build_tiny_bundle(root, "medpix", "student", seed=1, with_int8=True)
    build_tiny_bundle(root, "medpix", "teacher", seed=2, modality_weights=False)
    return root


@pytest.fixture(scope="session")
def bench_checkpoint(bench_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MultiTaskModel (random weights) taking the student bundle's exact inputs."""
    pytest.importorskip("torch", reason="the naive baseline needs torch")
    from app.contract.manifest import TOKENIZER_FILE, Manifest
    from app.contract.text import TextEncoder
    from models.checkpoint import save_checkpoint
    from models.config import ModelConfig
    from models.multitask import MultiTaskModel

    bundle = bench_bundle_dir / "medpix-student"
    pre = Manifest.load(bundle).preprocessing
    vocab = TextEncoder.from_file(bundle / TOKENIZER_FILE, pre.max_text_length).vocab_size
    cfg = ModelConfig(
        vision={
            "type": "vit", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 64, "image_size": pre.image_size, "patch_size": 16,
        },
        text={
            "type": "bert", "hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 48, "vocab_size": vocab, "max_position_embeddings": 64,
        },
        fusion_dim=16,
        fusion_heads=4,
        text_vocab_size=vocab,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("bench-ckpt") / "best.pt"
    extra = {"task_set": "medpix", "role": "student", "max_text_length": pre.max_text_length}
    save_checkpoint(path, MultiTaskModel(cfg), cfg, extra)
    return path
