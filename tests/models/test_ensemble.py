"""SeedEnsemble answers with the mean of its members' probabilities and round-trips through
our checkpoint format; single-model readers refuse it by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint, load_servable, save_checkpoint
from models.checkpoint_metadata import CheckpointMetadata
from models.ensemble import SeedEnsemble
from models.multitask import LOGIT_KEYS, MODALITY_WEIGHTS_KEY
from tests.models.tiny_configs import tiny_batch, tiny_config


def _ensemble(size: int = 3) -> SeedEnsemble:
    torch.manual_seed(0)
    return SeedEnsemble(tiny_config(fusion_type="cross_attention"), size).eval()


def test_output_is_the_log_of_the_members_mean_probability() -> None:
    ensemble = _ensemble()
    inputs = tiny_batch(batch=4)
    with torch.no_grad():
        out = ensemble(*inputs)
        members = [m(*inputs) for m in ensemble.members]
    for key in LOGIT_KEYS:
        mean = torch.stack([torch.softmax(o[key], -1) for o in members]).mean(0)
        torch.testing.assert_close(torch.softmax(out[key], -1), mean)
        torch.testing.assert_close(out[key].exp().sum(-1), torch.ones(4))
        # members differ, so the mean is not any one member's answer
        assert not torch.allclose(mean, torch.softmax(members[0][key], -1))
    weights = torch.stack([o[MODALITY_WEIGHTS_KEY] for o in members]).mean(0)
    torch.testing.assert_close(out[MODALITY_WEIGHTS_KEY], weights)


def test_one_member_is_not_an_ensemble() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        SeedEnsemble(tiny_config(), 1)


def test_checkpoint_round_trip_and_single_model_readers_refuse(tmp_path: Path) -> None:
    ensemble = _ensemble(2)
    meta = CheckpointMetadata(task_set="medpix", role="student", max_text_length=12)
    path = tmp_path / "best.pt"
    save_checkpoint(path, ensemble, ensemble.cfg, meta)
    assert torch.load(path, weights_only=True)["ensemble_size"] == 2

    loaded, cfg, loaded_meta = load_servable(path)
    assert isinstance(loaded, SeedEnsemble) and loaded.size == 2
    assert cfg.to_dict() == ensemble.cfg.to_dict() and loaded_meta.role == "student"
    inputs = tiny_batch(batch=2)
    with torch.no_grad():
        for key in LOGIT_KEYS:
            torch.testing.assert_close(loaded(*inputs)[key], ensemble(*inputs)[key])
    with pytest.raises(ValueError, match="seed ensemble of 2 members"):
        load_checkpoint(path)
