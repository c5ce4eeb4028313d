"""What a training run writes: the metrics.json header, the kept epoch's checkpoint (weights
plus CheckpointMetadata) and the final payload with the reloaded checkpoint's dev metrics."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.checkpoint import load_checkpoint, save_checkpoint
from models.checkpoint_metadata import CheckpointMetadata
from models.multitask import count_parameters
from models.training.config import TrainConfig
from models.training.epoch_report import FitResult, write_metrics
from models.training.evaluate import evaluate
from models.training.model_setup import BuiltModel
from models.training.objective import Objective
from models.training.prepare import PreparedData
from models.training.trainer import FitJob, SaveFn

CHECKPOINT_NAME = "best.pt"
METRICS_NAME = "metrics.json"
TOKENIZER_NAME = "tokenizer.json"


@dataclass(frozen=True)
class TrainingRun:
    """One run's config, output folder, encoded data and model, as the epoch loop sees them."""

    cfg: TrainConfig
    out: Path
    data: PreparedData
    built: BuiltModel
    progress: bool = True

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def labels(self) -> dict[str, list[str]]:
        return {t: list(self.data.spec.labels(t)) for t in self.data.spec.task_names}

    @property
    def training_config(self) -> dict[str, Any]:
        """The config as run (the output folder actually written)."""
        return {**self.cfg.to_dict(), "output_dir": str(self.out)}

    def metadata(self, record: dict[str, Any]) -> CheckpointMetadata:
        """What the checkpoint of the epoch `record` describes says about its model."""
        return CheckpointMetadata(
            task_set=self.cfg.data.type,
            role=self.cfg.role,
            tokenizer_json=self.data.tokenizer.to_str(),
            max_text_length=self.data.max_length,
            labels=self.labels,
            training_config=self.training_config,
            metrics={"epoch": record["epoch"], "dev": record["dev"]},
        )


def run_header(
    run: TrainingRun,
    teacher_dev: dict[str, Any] | None,
    vision_history: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The part of metrics.json that describes the run (written before every epoch summary)."""
    cfg, data = run.cfg, run.data
    header: dict[str, Any] = {
        "name": cfg.name,
        "role": cfg.role,
        "task_set": cfg.data.type,
        "parameters": count_parameters(run.built.model),
        "train_samples": len(data.train),
        "dev_samples": len(data.dev),
        "max_text_length": data.max_length,
        "train_token_length_percentiles": data.token_lengths,
        "labels": run.labels,
        "training_config": run.training_config,
    }
    if teacher_dev is not None:
        header["teacher_dev"] = teacher_dev
    if vision_history is not None:
        header["vision_pretraining"] = vision_history
    return header


def checkpoint_saver(run: TrainingRun) -> SaveFn:
    def save_best(record: dict[str, Any]) -> None:
        built = run.built
        save_checkpoint(run.checkpoint, built.model, built.cfg, run.metadata(record))

    return save_best


def fit_job(run: TrainingRun, objective: Objective, header: dict[str, Any]) -> FitJob:
    cfg = run.cfg
    return FitJob(
        model=run.built.model,
        train=run.data.train,
        dev=run.data.dev,
        task_names=run.data.spec.task_names,
        optim=cfg.optim,
        batch_size=cfg.data.batch_size,
        seed=cfg.seed,
        loss_fn=objective.loss_fn,
        save_best=checkpoint_saver(run),
        metrics_path=run.out / METRICS_NAME,
        header=header,
        extra_modules=objective.extra_modules,
        frozen=run.built.frozen,
        progress=run.progress,
    )


def finish(
    run: TrainingRun, header: dict[str, Any], result: FitResult, started: float
) -> dict[str, Any]:
    """Evaluate the checkpoint as saved and write the final metrics.json."""
    best_model, _, _ = load_checkpoint(run.checkpoint)
    task_names, batch_size = run.data.spec.task_names, run.cfg.data.batch_size
    final_dev = evaluate(best_model, run.data.dev, task_names, batch_size)
    payload = {
        **header,
        "best_epoch": result.best_epoch,
        "best_dev_mean_macro_f1": result.best_score,
        "final_dev": final_dev,
        "checkpoint": str(run.checkpoint),
        "train_wall_s": round(time.perf_counter() - started, 1),
        "epochs": result.history,
    }
    write_metrics(run.out / METRICS_NAME, payload)
    print(json.dumps({"final_dev": final_dev}, indent=1), flush=True)
    return payload
