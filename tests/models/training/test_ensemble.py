"""`ensemble`: one member per seed sharing one tokenizer, joined into one checkpoint that
`fusionserve export` turns into an ordinary bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.contract.manifest import Manifest
from fusionserve.cli import main as cli_main
from models.checkpoint import load_checkpoint, load_servable
from models.ensemble import SeedEnsemble
from models.training.config import ConfigError, TrainConfig
from models.training.ensemble import join_members, train_ensemble
from models.training.run import CHECKPOINT_NAME, METRICS_NAME, TOKENIZER_NAME, train_model
from tests.models.training.test_end_to_end import LIMIT, _raw


@pytest.fixture(scope="module")
def ensemble_dir(medpix_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ensemble")
    raw = _raw("teacher", medpix_root, tmp, ensemble={"seeds": [3, 4], "image_vote": True})
    raw["optim"]["epochs"] = 1
    train_ensemble(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)
    return tmp / "teacher"


def test_members_are_trained_per_seed_and_joined(ensemble_dir: Path) -> None:
    model, _cfg, meta = load_servable(ensemble_dir / CHECKPOINT_NAME)
    assert isinstance(model, SeedEnsemble) and model.size == 2 and model.image_vote
    recorded = (meta.training_config or {})["ensemble"]
    assert recorded == {"seeds": [3, 4], "image_vote": True}
    assert (meta.training_config or {})["name"] == "tiny-teacher"  # the recipe, not a member
    tokenizer = (ensemble_dir / TOKENIZER_NAME).read_text(encoding="utf-8")
    for slot, seed in zip(model.members, (3, 4), strict=True):
        member, _, member_meta = load_checkpoint(ensemble_dir / f"seed-{seed}" / CHECKPOINT_NAME)
        assert member_meta.tokenizer_json == tokenizer  # the second reused the first's
        assert (member_meta.training_config or {})["seed"] == seed
        for key, value in member.state_dict().items():
            torch.testing.assert_close(slot.state_dict()[key], value)
    first, second = (m.state_dict()["head_modality.head.1.weight"] for m in model.members)
    assert not torch.equal(first, second)  # different seeds, different weights

    metrics = json.loads((ensemble_dir / METRICS_NAME).read_text(encoding="utf-8"))
    assert metrics["ensemble"]["seeds"] == [3, 4] and len(metrics["members"]) == 2
    for view in ("dev", "dev_image_only", "dev_text_only"):
        assert 0.0 <= metrics[view]["mean_macro_f1"] <= 1.0
        assert set(metrics["member_mean_std"][view]) == {"modality", "location"}


def test_export_serves_the_ensemble_as_one_graph(ensemble_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    checkpoint = str(ensemble_dir / CHECKPOINT_NAME)
    rc = cli_main(["export", "--checkpoint", checkpoint, "--out", str(out), "--threads", "1"])
    assert rc == 0  # export checks ONNX-vs-torch parity and the self-test itself
    manifest = Manifest.load(out)
    assert max(manifest.metrics["parity"]["max_abs_diff"].values()) < 1e-4
    assert cli_main(["verify", str(out)]) == 0


def test_members_with_different_tokenizers_are_refused(
    ensemble_dir: Path, medpix_root: Path, tmp_path: Path
) -> None:
    raw = _raw("teacher", medpix_root, tmp_path, seed=5)
    raw["optim"]["epochs"] = 1
    raw["tokenizer"]["vocab_size"] = 150  # another vocabulary
    train_model(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)
    members = [ensemble_dir / "seed-3" / CHECKPOINT_NAME, tmp_path / "teacher" / CHECKPOINT_NAME]
    with pytest.raises(ValueError, match="tokenizer_json differs"):
        join_members(members, tmp_path / "joined")


@pytest.mark.parametrize("seeds", [[1], [2, 2]])
def test_ensemble_needs_two_different_seeds(
    seeds: list[int], medpix_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"ensemble\.seeds"):
        TrainConfig.from_dict(_raw("teacher", medpix_root, tmp_path, ensemble={"seeds": seeds}))


def test_the_recipe_must_list_the_members_seeds(
    ensemble_dir: Path, medpix_root: Path, tmp_path: Path
) -> None:
    members = [ensemble_dir / f"seed-{seed}" / CHECKPOINT_NAME for seed in (3, 4)]
    raw = _raw("teacher", medpix_root, tmp_path, ensemble={"seeds": [4, 3]})
    with pytest.raises(ValueError, match=r"ensemble.seeds \[4, 3\] are not the members' \[3, 4\]"):
        join_members(members, tmp_path / "joined", LIMIT, TrainConfig.from_dict(raw))
