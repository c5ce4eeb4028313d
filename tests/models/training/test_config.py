"""Config validation: every error names the offending key; committed configs are valid."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.contract.manifest import Manifest
from models.training.config import ConfigError, TrainConfig, load_config

REPO = Path(__file__).resolve().parents[3]
BASE: dict[str, Any] = {
    "name": "t",
    "role": "teacher",
    "data": {"type": "medpix", "root": "data"},
    "model": {"vision": "deit-tiny", "text": "bert-tiny", "fusion_dim": 64},
    "output_dir": "out",
}


def _with(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("optim.lr", "fast", r"'optim\.lr': expected a number"),
        ("optim.epochs", 2.5, r"'optim\.epochs': expected an integer"),
        ("optim.epochs", 0, r"'optim\.epochs': must be > 0"),
        ("optim.hflip", "yes", r"'optim\.hflip': expected true/false"),
        ("optim.schedule", "step", r"'optim\.schedule': 'step' is not one of"),
        ("optim.warmup_ratio", 1.5, r"'optim\.warmup_ratio'"),
        ("optim.text_dropout", 1.0, r"'optim\.text_dropout'"),
        ("optim.image_only_loss", -0.1, r"'optim\.image_only_loss': must be >= 0"),
        ("optim.text_only_loss", -1, r"'optim\.text_only_loss': must be >= 0"),
        ("optim.select", "middle", r"'optim\.select': 'middle' is not one of"),
        ("optim.class_weighting", "inverse", r"'optim\.class_weighting': 'inverse' is not one"),
        ("optim.momentum", 0.9, r"unknown key 'optim\.momentum'"),
        ("data.type", "xray", r"'data\.type': 'xray' is not one of"),
        ("data.batch_size", -1, r"'data\.batch_size': must be > 0"),
        ("tokenizer.max_length", 2, r"'tokenizer\.max_length': must be >= 3"),
        ("role", "coach", r"'role': 'coach' is not one of"),
        ("data", "medpix", r"data: expected a mapping"),
        ("extra", 1, r"unknown key 'extra'"),
        ("init.freeze_text", True, r"'init\.freeze_text': needs 'init\.text_weights'"),
        ("optim.lr", True, r"'optim\.lr': expected a number, got True"),
        ("optim.lr", 0, r"'optim\.lr': must be > 0, got 0\.0"),
        ("optim.crop_min_scale", 0, r"'optim\.crop_min_scale': must be in \(0, 1\]"),
        ("optim", None, r"optim: expected a mapping, got NoneType"),
        ("data.columns", {"image": 3}, r"'data\.columns\.image': expected a string, got 3"),
        ("data.image_size", "224", r"'data\.image_size': expected an integer, got '224'"),
        ("tokenizer.max_length", 0, r"'tokenizer\.max_length': must be > 0, got 0"),
        ("model", "bert", r"'model': expected a mapping, got 'bert'"),
        ("name", 5, r"'name': expected a string, got 5"),
        ("threads", 1.5, r"'threads': expected an integer"),
        ("pretrain_vision", {"lr": 0.1}, r"missing required key 'pretrain_vision\.epochs'"),
        ("pretrain_vision", {"epochs": 0}, r"'pretrain_vision\.epochs' and '\.lr': must be > 0"),
        ("pretrain_vision", {"epochs": 1, "warmup_ratio": 1}, r"'pretrain_vision\.warmup_ratio'"),
        ("tokenizer.colour", 1, r"unknown key 'tokenizer\.colour'; valid keys: \['from_teacher'"),
    ],
)
def test_bad_values_name_their_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(_with(path, value))


def test_missing_required_keys_are_named() -> None:
    raw = copy.deepcopy(BASE)
    del raw["data"]["root"]
    with pytest.raises(ConfigError, match=r"missing required key 'data\.root'"):
        TrainConfig.from_dict(raw)
    raw = copy.deepcopy(BASE)
    del raw["model"]["fusion_dim"]
    with pytest.raises(ConfigError, match=r"missing required key 'model\.fusion_dim'"):
        TrainConfig.from_dict(raw)


def test_student_distill_is_optional_but_needed_for_the_teacher_tokenizer() -> None:
    raw = {**BASE, "role": "student"}
    assert TrainConfig.from_dict(raw).distill is None  # a student trained on labels only
    with pytest.raises(ConfigError, match=r"'tokenizer\.from_teacher': needs 'distill'"):
        TrainConfig.from_dict({**raw, "tokenizer": {"from_teacher": True}})


def test_student_distill_needs_a_known_loss_and_teacher_view() -> None:
    raw = _with("role", "student")
    raw["distill"] = {"teacher_checkpoint": "t.pt", "loss": "crd"}
    with pytest.raises(ConfigError, match=r"'distill\.loss': 'crd' is not one of"):
        TrainConfig.from_dict(raw)
    raw["distill"] = {"teacher_checkpoint": "t.pt", "teacher_views": "cropped"}
    with pytest.raises(ConfigError, match=r"'distill\.teacher_views': 'cropped' is not one of"):
        TrainConfig.from_dict(raw)
    raw["distill"] = {"teacher_checkpoint": "t.pt", "alpha": "0.5"}
    assert TrainConfig.from_dict(raw).distill.alpha == 0.5  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="'distill': only a student"):
        TrainConfig.from_dict({**BASE, "distill": {"teacher_checkpoint": "t.pt"}})


def test_round_trip_through_dict() -> None:
    cfg = TrainConfig.from_dict(_with("optim.lr", "3e-4"))
    assert cfg.optim.lr == 3e-4
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with("optim.lr", "x")), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: 'optim\.lr'"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "name",
    ["medpix-teacher", "medpix-student", "wound-teacher", "wound-student"],
)
def test_committed_configs_are_valid(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.name == name and cfg.role == name.split("-")[1]
    assert cfg.model.get("fusion_type") == "cross_attention"
    assert not Path(cfg.output_dir).resolve().is_relative_to(REPO)
    if cfg.distill is not None:  # a committed teacher bundle of the same task set, or a run's
        teacher = cfg.distill.teacher_checkpoint
        if teacher.startswith("exported/"):
            assert Manifest.load(REPO / teacher).task_set == cfg.data.type
        else:
            assert teacher.startswith(f"../artifacts/checkpoints/{cfg.data.type}")


def test_embedding_seed_and_whole_encoder_are_exclusive() -> None:
    raw = _with("init", {"text_weights": "a.safetensors", "text_embeddings": "a.safetensors"})
    with pytest.raises(ConfigError, match=r"'init\.text_embeddings': cannot be combined"):
        TrainConfig.from_dict(raw)
    raw = _with("init", {"checkpoint": "best.pt", "text_embeddings": "a.safetensors"})
    with pytest.raises(ConfigError, match=r"'init\.checkpoint': cannot be combined"):
        TrainConfig.from_dict(raw)


def test_root_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="config: expected a mapping, got list"):
        TrainConfig.from_dict([BASE])


def test_tokenizer_path_and_teacher_tokenizer_are_exclusive() -> None:
    raw = _with("role", "student")
    raw["distill"] = {"teacher_checkpoint": "t.pt"}
    raw["tokenizer"] = {"from_teacher": True, "path": "vocab.txt"}
    with pytest.raises(ConfigError, match=r"'tokenizer\.path': cannot be combined"):
        TrainConfig.from_dict(raw)


def test_defaults_and_numbers_as_floats() -> None:
    """Ints and numeric strings become floats where the key is a number; defaults fill in."""
    cfg = TrainConfig.from_dict(_with("optim", {"lr": 1, "weight_decay": "0", "grad_clip": 2}))
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.grad_clip) == (1.0, 0.0, 2.0)
    assert isinstance(cfg.optim.lr, float) and cfg.optim.epochs == 10
    assert cfg.data.cache_dir == "../artifacts/cache" and cfg.tokenizer.max_length == 128
    assert cfg.distill is None and cfg.pretrain_vision is None and cfg.seed == 42


def test_to_dict_lists_every_section_in_schema_order() -> None:
    """The training_config stored in checkpoints keeps its shape (keys and their order)."""
    raw = TrainConfig.from_dict(BASE).to_dict()
    assert list(raw) == [
        "name", "role", "data", "model", "output_dir", "tokenizer", "optim", "distill",
        "init", "pretrain_vision", "seed", "ensemble", "late_fusion", "threads", "provenance",
    ]  # fmt: skip
    assert raw["optim"]["select"] == "best" and raw["data"]["columns"] == {}


def test_config_is_immutable() -> None:
    cfg = TrainConfig.from_dict(BASE)
    with pytest.raises(ValueError, match="frozen"):
        cfg.optim.epochs = 3
