"""Train one model from a TrainConfig: a teacher on CE, or a student distilled from a frozen
teacher checkpoint. Writes `<out>/best.pt` (models.checkpoint format, with the tokenizer JSON,
max text length, label maps and training config) and `<out>/metrics.json` next to it."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.training.config import TrainConfig
from models.training.frozen_prefix import attach as attach_prefix_memo
from models.training.frozen_prefix import detach as detach_prefix_memo
from models.training.losses import ClassWeights, balanced_class_weights
from models.training.model_setup import BuiltModel, build_model, model_config
from models.training.objective import build_objective
from models.training.prepare import PreparedData, prepare_data
from models.training.run_outputs import (
    CHECKPOINT_NAME,
    METRICS_NAME,
    TOKENIZER_NAME,
    TrainingRun,
    finish,
    fit_job,
    run_header,
)
from models.training.teachers import load_teacher, tokenizer_override
from models.training.trainer import fit
from models.training.vision_pretrain import pretrain_vision

__all__ = ["CHECKPOINT_NAME", "METRICS_NAME", "TOKENIZER_NAME", "seed_everything", "train_model"]


def train_model(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run training end to end; returns the metrics.json payload."""
    cfg = with_epochs(cfg, epochs)
    out = start(cfg, out_dir)
    teacher = load_teacher(cfg)
    data = prepare_data(cfg, limit, *tokenizer_override(cfg, teacher))
    mcfg = model_config(cfg, data)
    seed_everything(cfg.seed)  # same init whatever data preparation consumed
    built = build_model(mcfg, cfg.init)
    class_weights = class_weights_for(cfg, data, built)
    vision_history = vision_stage(cfg, data, built, class_weights, progress)
    objective = build_objective(cfg, data, built.model, teacher, class_weights)
    run = TrainingRun(cfg, out, data, built, progress)
    header = run_header(run, objective.teacher_dev, vision_history)
    (out / TOKENIZER_NAME).write_text(data.tokenizer.to_str(), encoding="utf-8")
    print(
        f"{cfg.name}: {cfg.role} on {cfg.data.type}, {header['parameters']:,} parameters, "
        f"train {len(data.train)} / dev {len(data.dev)}, max_length {data.max_length}",
        flush=True,
    )
    started = time.perf_counter()
    attach_prefix_memo(built.model.vision, cfg.init.freeze_vision_blocks)
    try:
        result = fit(fit_job(run, objective, header))
    finally:
        detach_prefix_memo(built.model.vision)
    return finish(run, header, result, started)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def with_epochs(cfg: TrainConfig, epochs: int | None) -> TrainConfig:
    """`cfg` with the command line's epoch count, if one was given."""
    if epochs is None:
        return cfg
    return cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": epochs})})


def start(cfg: TrainConfig, out_dir: str | Path | None) -> Path:
    """Create the output folder, set the thread count and seed every RNG."""
    out = Path(out_dir if out_dir is not None else cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    return out


def class_weights_for(cfg: TrainConfig, data: PreparedData, built: BuiltModel) -> ClassWeights:
    if cfg.optim.class_weighting != "balanced":
        return None
    return balanced_class_weights(data.train.labels, built.class_counts)


def vision_stage(
    cfg: TrainConfig,
    data: PreparedData,
    built: BuiltModel,
    class_weights: ClassWeights,
    progress: bool,
) -> list[dict[str, Any]] | None:
    """The optional image-only pretraining of the vision backbone; its per-epoch history."""
    if cfg.pretrain_vision is None:
        return None
    return pretrain_vision(
        built.model.vision,
        built.class_counts,
        data.train,
        data.dev,
        data.spec.task_names,
        cfg.pretrain_vision,
        cfg.optim,
        cfg.data.batch_size,
        cfg.seed,
        class_weights,
        progress,
    )
