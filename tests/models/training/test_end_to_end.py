"""Tiny real-data teacher → student runs: artefacts written, losses finite, reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from fusionserve.cli import main as cli_main
from models.checkpoint import load_checkpoint
from models.config import ModelConfig
from models.multitask import MultiTaskModel
from models.training.config import ConfigError, InitConfig, TrainConfig
from models.training.model_setup import build_model, model_config
from models.training.run import CHECKPOINT_NAME, METRICS_NAME, train_model

LIMIT = 16
MODEL: dict[str, Any] = {
    "vision": {
        "type": "vit",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "patch_size": 16,
        "image_size": 32,
    },
    "text": {
        "type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
    },
    "fusion_dim": 32,
    "fusion_heads": 4,
    "fusion_type": "cross_attention",
}


def _raw(role: str, root: Path, tmp: Path, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": f"tiny-{role}",
        "role": role,
        "seed": 7,
        "threads": 1,
        "data": {
            "type": "medpix",
            "root": str(root),
            "batch_size": 8,
            "image_size": 32,
            "cache_dir": str(tmp / "cache"),
        },
        "tokenizer": {"vocab_size": 200, "max_length": 24},
        "model": MODEL,
        "optim": {"epochs": 2, "lr": 3e-3},
        "output_dir": str(tmp / role),
    }
    raw.update(extra)
    return raw


@pytest.fixture(scope="module")
def teacher_dir(medpix_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = TrainConfig.from_dict(_raw("teacher", medpix_root, tmp))
    train_model(cfg, limit=LIMIT, progress=False)
    return tmp / "teacher"


def _student(
    root: Path, teacher: Path, out: Path, loss: str, own_tokenizer: bool = True, **optim: Any
) -> dict[str, Any]:
    raw = _raw(
        "student",
        root,
        out.parent,
        distill={"teacher_checkpoint": str(teacher / CHECKPOINT_NAME), "loss": loss},
    )
    raw["optim"].update(optim)
    # Own tokenizer (differs from the teacher's), or the teacher's: WordPiece training breaks
    # frequency ties in hash order, so bit-exact reruns need a fixed tokenizer.
    raw["tokenizer"] = (
        {"vocab_size": 150, "max_length": 20} if own_tokenizer else {"from_teacher": True}
    )
    return train_model(TrainConfig.from_dict(raw), out_dir=out, limit=LIMIT, progress=False)


def test_teacher_writes_checkpoint_and_metrics(teacher_dir: Path) -> None:
    metrics = json.loads((teacher_dir / METRICS_NAME).read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["train_samples"] == metrics["dev_samples"] == LIMIT
    for task in ("modality", "location"):
        assert set(metrics["final_dev"][task]) == {"accuracy", "macro_f1", "roc_auc"}
    _model, cfg, meta = load_checkpoint(teacher_dir / CHECKPOINT_NAME)
    assert meta.role == "teacher" and meta.task_set == "medpix"
    assert meta.max_text_length == 24
    assert meta.labels is not None and meta.labels["modality"] == ["CT", "MR"]
    assert meta.training_config is not None
    assert meta.training_config["optim"]["epochs"] == 2
    assert meta.metrics is not None and meta.metrics["epoch"] == metrics["best_epoch"]
    tokenizer_json = meta.require_tokenizer()
    assert cfg.text_vocab_size == len(json.loads(tokenizer_json)["model"]["vocab"])
    assert (teacher_dir / "tokenizer.json").read_text() == tokenizer_json


def test_combined_student_is_finite_and_reproducible(medpix_root, teacher_dir, tmp_path):
    first = _student(medpix_root, teacher_dir, tmp_path / "a", "combined", False, epochs=3)
    second = _student(medpix_root, teacher_dir, tmp_path / "b", "combined", False, epochs=3)
    losses = [e["train"]["loss"] for e in first["epochs"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert set(first["epochs"][0]["train"]) == {"loss", "ce", "kl", "mse", "nce"}
    assert losses[-1] < losses[0]
    assert [e["train"] for e in second["epochs"]] == [e["train"] for e in first["epochs"]]
    assert second["final_dev"] == first["final_dev"]
    assert first["teacher_dev"]["modality"]["accuracy"] >= 0.0
    model_a, _, meta = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)
    model_b, _, _ = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    for (key, a), b in zip(
        model_a.state_dict().items(), model_b.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key
    assert meta.role == "student" and meta.max_text_length == 24
    teacher_tokenizer = (teacher_dir / "tokenizer.json").read_text()
    assert meta.tokenizer_json == teacher_tokenizer


@pytest.mark.parametrize(
    ("loss", "parts"), [("vanilla", {"loss", "ce", "kl"}), ("ce", {"loss", "ce"})]
)
def test_other_losses_run(medpix_root, teacher_dir, tmp_path, loss, parts) -> None:
    out = _student(medpix_root, teacher_dir, tmp_path / loss, loss, epochs=1)
    assert set(out["epochs"][0]["train"]) == parts
    assert out["max_text_length"] == 20


@pytest.mark.parametrize(
    "optim",
    [
        {"hflip": True},
        {"crop_min_scale": 0.6, "class_weighting": "balanced"},
    ],
)
def test_augmented_runs_use_live_teacher_outputs(medpix_root, teacher_dir, tmp_path, optim):
    first = _student(medpix_root, teacher_dir, tmp_path / "a", "combined", False, epochs=1, **optim)
    again = _student(medpix_root, teacher_dir, tmp_path / "b", "combined", False, epochs=1, **optim)
    plain = _student(medpix_root, teacher_dir, tmp_path / "c", "combined", False, epochs=1)
    assert torch.isfinite(torch.tensor(first["epochs"][0]["train"]["loss"]))
    assert first["epochs"][0]["train"] == again["epochs"][0]["train"]
    assert first["epochs"][0]["train"] != plain["epochs"][0]["train"]


def test_cli_errors_are_clear(medpix_root, teacher_dir, tmp_path, capsys) -> None:
    path = tmp_path / "teacher.yaml"
    path.write_text(yaml.safe_dump(_raw("teacher", medpix_root, tmp_path)), encoding="utf-8")
    assert cli_main(["train", "student", "--config", str(path)]) == 2
    assert "'role' is 'teacher', not 'student'" in capsys.readouterr().err
    student = _raw(
        "student", medpix_root, tmp_path, distill={"teacher_checkpoint": str(tmp_path / "none.pt")}
    )
    path.write_text(yaml.safe_dump(student), encoding="utf-8")
    assert cli_main(["train", "student", "--config", str(path), "--limit", "4"]) == 2
    assert "'distill.teacher_checkpoint': file not found" in capsys.readouterr().err
    bad_data = _raw("teacher", tmp_path / "nowhere", tmp_path)
    path.write_text(yaml.safe_dump(bad_data), encoding="utf-8")
    assert cli_main(["train", "teacher", "--config", str(path)]) == 2
    assert "MedPix train split file not found" in capsys.readouterr().err


def test_cli_trains_with_overrides(medpix_root, tmp_path) -> None:
    path = tmp_path / "teacher.yaml"
    path.write_text(yaml.safe_dump(_raw("teacher", medpix_root, tmp_path)), encoding="utf-8")
    out = tmp_path / "cli-out"
    argv = [
        "train",
        "teacher",
        "--config",
        str(path),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--limit",
        "8",
        "--no-progress",
    ]
    assert cli_main(argv) == 0
    metrics = json.loads((out / METRICS_NAME).read_text())
    assert len(metrics["epochs"]) == 1 and metrics["train_samples"] == 8


def test_latency_tool_reports_each_checkpoint(teacher_dir, capsys) -> None:
    from models.training.latency import main as latency_main

    ckpt = teacher_dir / CHECKPOINT_NAME
    assert latency_main([str(ckpt), "--threads", "1", "--batches", "1", "2", "--repeats", "1"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model, _, _ = load_checkpoint(ckpt)
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    assert set(row["ms_per_sample"]) == {"1", "2"} and min(row["ms_per_sample"].values()) > 0


@pytest.fixture(scope="module")
def teacher_bundle(teacher_dir: Path, medpix_root: Path) -> Path:
    """The tiny teacher exported as a bundle (calibrated on dev), as a team would keep it."""
    out = teacher_dir.parent / "teacher-bundle"
    argv = ["export", "--checkpoint", str(teacher_dir / CHECKPOINT_NAME), "--out", str(out)]
    assert cli_main([*argv, "--data-root", str(medpix_root), "--dev-limit", "32"]) == 0
    return out


def test_bundle_teacher_logits_reproduce_its_probabilities(teacher_bundle, medpix_root) -> None:
    from models.training.prepare import encode_like, prepare_data
    from models.training.teacher_bundle import BundleTeacher

    teacher = BundleTeacher.load(teacher_bundle, "medpix")
    raw = _raw("teacher", medpix_root, teacher_bundle.parent)
    raw["data"]["image_size"] = 48  # a student reading other sizes than its teacher's 32 px
    data = encode_like(
        prepare_data(TrainConfig.from_dict(raw), LIMIT),
        teacher.tokenizer,
        teacher.max_length,
        teacher.image_size,
        raw["data"]["cache_dir"],
    )
    assert data.train.pixels.shape[1:3] == (32, 32)
    probs = teacher.probabilities(data.train, 5)
    logits = teacher.logits(probs)
    for (key, z), task, p in zip(logits.items(), teacher.manifest.tasks, probs, strict=True):
        assert z.shape == (LIMIT, len(task.labels)), key
        again = torch.softmax(z / task.temperature, dim=-1).numpy()
        np.testing.assert_allclose(again, p, atol=1e-6)
    with pytest.raises(ValueError, match=r"bundle task set 'medpix' != data\.type 'wound'"):
        BundleTeacher.load(teacher_bundle, "wound")


def test_student_distils_from_a_teacher_bundle_with_unimodal_losses(
    medpix_root, teacher_bundle, tmp_path
) -> None:
    raw = _raw(
        "student",
        medpix_root,
        tmp_path,
        distill={"teacher_checkpoint": str(teacher_bundle), "loss": "vanilla", "alpha": 0.5},
        tokenizer={"from_teacher": True},
        init={"freeze_word_embeddings": True},
    )
    raw["optim"].update(
        {
            "epochs": 2,
            "image_only_loss": 0.5,
            "text_only_loss": 0.5,
            "text_dropout": 0.3,
            "select": "last",
        }
    )
    out = train_model(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)
    assert set(out["epochs"][0]["train"]) == {"loss", "ce", "kl", "unimodal"}
    assert out["best_epoch"] == 2  # "last": the recipe's final epoch, whatever dev says
    assert set(out["epochs"][0]) >= {"dev_image_only", "dev_text_only"}
    assert out["teacher_dev"]["modality"]["accuracy"] >= 0.0
    student, model_cfg, meta = load_checkpoint(Path(out["checkpoint"]))
    assert meta.tokenizer_json == (teacher_bundle / "tokenizer.json").read_text()
    torch.manual_seed(7)  # the config's seed: the same initial weights as the run's
    initial = MultiTaskModel(model_cfg)
    table = "embeddings.word_embeddings.weight"
    assert torch.equal(student.text.state_dict()[table], initial.text.state_dict()[table])
    trained = "embeddings.position_embeddings.weight"
    assert not torch.equal(student.text.state_dict()[trained], initial.text.state_dict()[trained])
    raw["distill"]["loss"] = "combined"
    with pytest.raises(ConfigError, match="'combined' needs the teacher's features"):
        train_model(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)


def test_image_only_view_distils_toward_the_bundle_teachers_image_only_answer(
    medpix_root, teacher_bundle, teacher_dir, tmp_path
) -> None:
    from models.training.objective import build_objective
    from models.training.prepare import encode_like, prepare_data
    from models.training.teacher_bundle import BundleTeacher
    from models.training.teachers import tokenizer_override

    distill = {"teacher_checkpoint": str(teacher_bundle), "loss": "vanilla", "alpha": 0.5}
    distill["image_only_alpha"] = 0.8
    raw = _raw("student", medpix_root, tmp_path, distill=distill, tokenizer={"from_teacher": True})
    raw["optim"].update({"epochs": 1, "image_only_loss": 0.0, "select": "last"})
    cfg = TrainConfig.from_dict(raw)
    teacher = BundleTeacher.load(teacher_bundle, "medpix")
    data = prepare_data(cfg, LIMIT, *tokenizer_override(cfg, teacher))
    model = MultiTaskModel(model_config(cfg, data))
    objective = build_objective(cfg, data, model, teacher, None)
    assert objective.image_teacher is not None and objective.image_teacher.alpha == 0.8
    t_data = encode_like(
        data, teacher.tokenizer, teacher.max_length, teacher.image_size, raw["data"]["cache_dir"]
    )
    fused = teacher.probabilities(t_data.train, 8)
    image_only = teacher.probabilities(t_data.train.image_only(), 8)
    for (key, z), task, p in zip(
        objective.image_teacher.logits.logits.items(),
        teacher.manifest.tasks,
        image_only,
        strict=True,
    ):
        again = torch.softmax(z / task.temperature, dim=-1).numpy()
        np.testing.assert_allclose(again, p, atol=1e-6, err_msg=key)
    # the targets are the teacher's answers without its text, not its fused ones (the tiny
    # teacher leans on the image, so they differ little; its graph is deterministic)
    assert max(float(np.abs(p - q).max()) for p, q in zip(image_only, fused, strict=True)) > 1e-6
    out = train_model(cfg, limit=LIMIT, progress=False)  # the term alone (no image-only CE)
    assert out["epochs"][0]["train"]["unimodal"] > 0
    raw["distill"]["teacher_checkpoint"] = str(teacher_dir / CHECKPOINT_NAME)
    raw["tokenizer"] = {"from_teacher": True}
    with pytest.raises(ConfigError, match=r"'distill\.image_only_alpha': needs an exported"):
        train_model(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)


def test_init_checkpoint_starts_from_the_trained_weights(teacher_dir: Path) -> None:
    path = teacher_dir / "best.pt"
    trained, cfg, _meta = load_checkpoint(path)
    built = build_model(cfg, InitConfig(checkpoint=str(path)))
    for key, value in trained.state_dict().items():
        assert torch.equal(built.model.state_dict()[key], value), key
    other = ModelConfig.from_dict({**cfg.to_dict(), "dropout": 0.3})
    with pytest.raises(ConfigError, match="another model config"):
        build_model(other, InitConfig(checkpoint=str(path)))
