"""Our checkpoint format round trip and research plain-state_dict loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from models.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    load_research_checkpoint,
    load_state_dict_compat,
    save_checkpoint,
)
from models.checkpoint_metadata import CheckpointMetadata
from models.multitask import MultiTaskModel
from tests.models.tiny_configs import tiny_batch, tiny_config

EXTRA = {
    "task_set": "medpix",
    "role": "student",
    "tokenizer_json": '{"version": "1.0"}',
    "max_text_length": 12,
    "labels": {"modality": ["CT", "MR"], "location": ["A", "B", "C", "D", "E"]},
    "training_config": {"epochs": 1, "lr": 1e-3},
    "metrics": {"dev": {"mean_macro_f1": 0.5}},
}


def trained_like(**cfg_overrides) -> MultiTaskModel:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config(**cfg_overrides))
    with torch.no_grad():  # make sure nothing is left at a default init value
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


def test_round_trip_restores_config_extra_and_outputs(tmp_path: Path) -> None:
    model = trained_like(fusion_type="shomr")
    cfg = model.cfg
    path = tmp_path / "ckpt" / "student.pt"
    save_checkpoint(path, model, cfg, EXTRA)
    loaded, loaded_cfg, meta = load_checkpoint(path)
    assert loaded_cfg == cfg
    assert meta == CheckpointMetadata.from_dict(EXTRA)
    assert meta.to_dict() == EXTRA
    assert not loaded.training
    batch = tiny_batch()
    with torch.no_grad():
        a, b = model(*batch), loaded(*batch)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not list(tmp_path.glob("ckpt/*.tmp"))


def test_reserved_extra_keys_rejected(tmp_path: Path) -> None:
    model = trained_like()
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, model.cfg, {**EXTRA, "state_dict": {}})


def test_typed_metadata_is_written_as_the_old_plain_keys(tmp_path: Path) -> None:
    """Checkpoints stay plain dicts: readers from before the class still find every key."""
    model = trained_like()
    path = tmp_path / "typed.pt"
    save_checkpoint(path, model, model.cfg, CheckpointMetadata.from_dict(EXTRA))
    payload = torch.load(path, weights_only=True)
    assert {k: v for k, v in payload.items() if k in EXTRA} == EXTRA


def test_checkpoint_without_metadata_names_the_missing_key(tmp_path: Path) -> None:
    model = trained_like()
    path = tmp_path / "bare.pt"
    torch.save(
        {"format": 1, "state_dict": model.state_dict(), "model_config": model.cfg.to_dict()}, path
    )
    with pytest.raises(ValueError, match=r"bare\.pt: checkpoint lacks 'task_set'"):
        load_checkpoint(path)


def test_research_state_dict_with_position_ids_buffer_loads(tmp_path: Path) -> None:
    """Older transformers saved `text.embeddings.position_ids`; strict loading tolerates it."""
    source = trained_like()
    sd = dict(source.state_dict())
    sd["text.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    path = tmp_path / "student_best.pth"
    torch.save(sd, path)
    model = load_research_checkpoint(path, source.cfg)
    batch = tiny_batch()
    with torch.no_grad():
        torch.testing.assert_close(
            model(*batch)["logits_modality"], source(*batch)["logits_modality"]
        )


def test_plain_state_dict_is_not_mistaken_for_our_format(tmp_path: Path) -> None:
    path = tmp_path / "teacher_final.pth"
    torch.save(trained_like().state_dict(), path)
    with pytest.raises(ValueError, match="load_research_checkpoint"):
        load_checkpoint(path)


def test_class_count_mismatch_is_explained() -> None:
    wound = trained_like(num_classes=(10, 3))
    medpix = MultiTaskModel(tiny_config(num_classes=(2, 5)))
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_compat(medpix, wound.state_dict())
    message = str(err.value)
    assert "head_modality.head.1.weight: checkpoint (10, 16) vs model (2, 16)" in message
    assert "task-1 class count" in message and "task-2 class count" in message


def test_missing_and_unexpected_keys_are_named() -> None:
    model = trained_like()
    sd = dict(model.state_dict())
    del sd["proj_txt.bias"]
    sd["fusion.fusion.layers.0.linear1.weight"] = torch.zeros(1)  # a research `simple` key
    with pytest.raises(
        CheckpointMismatchError, match=re.escape("missing keys: proj_txt.bias")
    ) as err:
        load_state_dict_compat(MultiTaskModel(model.cfg), sd)
    assert "unexpected keys: fusion.fusion.layers.0.linear1.weight" in str(err.value)


def test_other_fusion_checkpoint_is_rejected() -> None:
    gated = trained_like(fusion_type="gated")
    with pytest.raises(CheckpointMismatchError, match=re.escape("fusion.gate.0.weight")):
        load_state_dict_compat(MultiTaskModel(tiny_config()), gated.state_dict())
