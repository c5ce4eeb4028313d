"""Local pretrained initialisation: whole text encoders and PCA-reduced word embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from models.training.config import ConfigError
from models.training.pretrained import load_text_weights, seed_word_embeddings


def _bert(hidden: int, vocab: int = 40) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=16,
    )
    return BertModel(config, add_pooling_layer=False)


def _save(model: BertModel, path: Path, table: torch.Tensor | None = None) -> Path:
    state = {f"bert.{k}": v.contiguous() for k, v in model.state_dict().items()}
    if table is not None:
        state["bert.embeddings.word_embeddings.weight"] = table
    save_file(state, str(path))
    return path


def _distances(table: torch.Tensor) -> torch.Tensor:
    return torch.cdist(table, table)


def test_low_rank_table_keeps_its_geometry(tmp_path: Path) -> None:
    # A 32-wide table that truly lives in 6 dimensions (plus an offset): PCA to 6 keeps every
    # pairwise distance up to one global scale.
    gen = torch.Generator().manual_seed(1)
    table = torch.randn(40, 6, generator=gen) @ torch.randn(6, 32, generator=gen) + 3.0
    path = _save(_bert(32), tmp_path / "src.safetensors", table)
    student = _bert(6)
    assert seed_word_embeddings(student, path) == (32, 6)
    seeded = student.embeddings.word_embeddings.weight.detach()
    ratio = (
        _distances(seeded)[~torch.eye(40, dtype=torch.bool)]
        / _distances(table)[~torch.eye(40, dtype=torch.bool)]
    )
    assert torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3)
    assert torch.isclose(seeded.std(), table.std(), rtol=1e-4)


def test_principal_axes_come_first(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(2)
    scales = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05])
    table = torch.randn(40, 8, generator=gen) * scales
    path = _save(_bert(8), tmp_path / "src.safetensors", table)
    student = _bert(4)
    seed_word_embeddings(student, path)
    variances = student.embeddings.word_embeddings.weight.detach().var(dim=0)
    assert torch.all(variances[:-1] >= variances[1:])


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (lambda: _bert(8, vocab=41), r"vocabulary 40 != the tokenizer's 41"),
        (lambda: _bert(64), r"width 32 < model.text hidden 64"),
    ],
)
def test_mismatches_are_config_errors(tmp_path: Path, student, message: str) -> None:
    path = _save(_bert(32), tmp_path / "src.safetensors")
    with pytest.raises(ConfigError, match=message):
        seed_word_embeddings(student(), path)


def test_missing_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ConfigError, match=r"no 'embeddings\.word_embeddings\.weight'"):
        seed_word_embeddings(_bert(8), path)


def test_whole_encoder_loads_or_names_the_misfit(tmp_path: Path) -> None:
    source = _bert(16)
    path = _save(source, tmp_path / "src.safetensors")
    target = _bert(16)
    torch.nn.init.zeros_(target.embeddings.word_embeddings.weight)
    assert load_text_weights(target, path) > 0
    assert torch.equal(
        target.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight
    )
    with pytest.raises(ConfigError, match="shape mismatch"):
        load_text_weights(_bert(8), path)
