"""The epoch loop shared by teacher and student training.

One AdamW over every trainable parameter (model + distillation projector), created once;
seeded shuffling/flips; dev evaluation after every epoch; the kept epoch (best dev mean
macro-F1, or the last) is checkpointed and every epoch's metrics are rewritten to
`metrics.json` next to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from models.training.config import OptimConfig
from models.training.epoch_report import (
    FitResult,
    dev_score,
    epoch_line,
    epoch_record,
    select_epoch,
    summary,
    write_metrics,
)
from models.training.schedule import build_schedule
from models.training.tensors import Batch, SplitTensors
from models.training.unimodal import hide_text

LossFn = Callable[[dict[str, Tensor], Batch], tuple[Tensor, dict[str, float]]]
SaveFn = Callable[[dict[str, Any]], None]

__all__ = ["FitJob", "FitResult", "LossFn", "SaveFn", "fit", "step", "write_metrics"]


@dataclass
class FitJob:
    """What a training run hands the epoch loop."""

    model: nn.Module
    train: SplitTensors
    dev: SplitTensors
    task_names: tuple[str, str]
    optim: OptimConfig
    batch_size: int
    seed: int
    loss_fn: LossFn
    save_best: SaveFn  # called with the kept epoch's record
    metrics_path: Path
    header: dict[str, Any]  # the run's description, written before the epoch summary
    extra_modules: list[nn.Module] = field(default_factory=list)  # trained too (KD projector)
    frozen: list[nn.Module] = field(default_factory=list)  # kept in eval mode (no dropout)
    progress: bool = True


@dataclass
class FitState:
    """What the loop advances: optimizer, schedule, the shuffling RNG and the results."""

    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    steps_per_epoch: int
    started: float = field(default_factory=time.perf_counter)
    result: FitResult = field(default_factory=FitResult)

    @classmethod
    def start(cls, job: FitJob) -> FitState:
        modules = [job.model, *job.extra_modules]
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        optim = job.optim
        optimizer = torch.optim.AdamW(
            param_groups(job.model, params, optim), lr=optim.lr, weight_decay=optim.weight_decay
        )
        steps_per_epoch = -(-len(job.train) // job.batch_size)
        scheduler = build_schedule(
            optimizer, optim.schedule, steps_per_epoch * optim.epochs, optim.warmup_ratio
        )
        generator = torch.Generator().manual_seed(job.seed)
        return cls(params, optimizer, scheduler, generator, steps_per_epoch)


def param_groups(
    model: nn.Module, params: list[nn.Parameter], optim: OptimConfig
) -> list[dict[str, Any]]:
    """One group at `lr`, plus the image backbone's at `vision_lr` when that is set."""
    vision = getattr(model, "vision", None)
    if optim.vision_lr is None or vision is None:
        return [{"params": params}]
    own = {id(p) for p in vision.parameters()}
    return [
        {"params": [p for p in params if id(p) not in own]},
        {"params": [p for p in params if id(p) in own], "lr": optim.vision_lr},
    ]


def fit(job: FitJob) -> FitResult:
    """Train for optim.epochs epochs; returns the history and the kept epoch."""
    state = FitState.start(job)
    for epoch in range(1, job.optim.epochs + 1):
        train_means = train_epoch(job, state, epoch)
        record = epoch_record(
            job.model, job.dev, job.task_names, job.batch_size, epoch, train_means
        )
        record["elapsed_s"] = round(time.perf_counter() - state.started, 1)
        keep_if_selected(job, state.result, record)
        state.result.wall_s = time.perf_counter() - state.started
        write_metrics(job.metrics_path, {**job.header, **summary(state.result)})
        best = state.result.best_epoch == epoch
        print(epoch_line(record, job.task_names, best), flush=True)
    return state.result


def train_epoch(job: FitJob, state: FitState, epoch: int) -> dict[str, float]:
    """One pass over the shuffled training split; returns the sample-weighted loss means."""
    set_train_modes(job)
    optim = job.optim
    totals: dict[str, float] = {}
    seen = 0
    bar = tqdm(
        job.train.batches(job.batch_size, state.generator, optim.hflip, optim.crop_min_scale),
        total=state.steps_per_epoch,
        desc=f"epoch {epoch}/{optim.epochs}",
        disable=not job.progress,
        leave=False,
    )
    for batch in bar:
        loss, parts = batch_loss(job, state.generator, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch}: non-finite loss {float(loss)} ({parts})")
        step(loss, state.optimizer, state.scheduler, state.params, optim.grad_clip)
        n = len(batch.index)
        seen += n
        for key, value in {"loss": float(loss.detach()), **parts}.items():
            totals[key] = totals.get(key, 0.0) + value * n
        bar.set_postfix(loss=f"{totals['loss'] / seen:.4f}")
    return {k: v / max(seen, 1) for k, v in totals.items()}


def set_train_modes(job: FitJob) -> None:
    job.model.train()
    for module in job.extra_modules:
        module.train()
    for module in job.frozen:
        module.eval()  # fixed pretrained parts: no dropout, no gradients


def batch_loss(
    job: FitJob, generator: torch.Generator, batch: Batch
) -> tuple[Tensor, dict[str, float]]:
    """Forward one batch (some texts swapped for the empty-text fallback) and its loss."""
    ids, mask = batch.input_ids, batch.attention_mask
    empty_text = job.train.empty_text
    if empty_text is not None:
        ids, mask = hide_text(ids, mask, job.optim.text_dropout, generator, empty_text)
    out = job.model(batch.pixel_values, ids, mask)
    return job.loss_fn(out, batch)


def keep_if_selected(job: FitJob, result: FitResult, record: dict[str, Any]) -> None:
    """Record the epoch, and checkpoint it when the selection rule keeps it."""
    result.history.append(record)
    epoch, score = record["epoch"], dev_score(record)
    if select_epoch(job.optim.select, score, result.best_score, epoch, job.optim.epochs):
        result.best_score, result.best_epoch = score, epoch
        job.save_best(record)


def step(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    params: list[torch.nn.Parameter],
    grad_clip: float | None,
) -> None:
    """One update: fresh gradients, optional norm clipping, optimizer then schedule."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    scheduler.step()
