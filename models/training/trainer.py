"""The epoch loop shared by teacher and student training.

One AdamW over every trainable parameter (model + distillation projector), created once;
seeded shuffling/flips; dev evaluation after every epoch; the best mean-macro-F1 epoch is
checkpointed and every epoch's metrics are rewritten to `metrics.json` next to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from models.training.config import OptimConfig
from models.training.evaluate import evaluate
from models.training.schedule import build_schedule
from models.training.tensors import Batch, SplitTensors
from models.training.unimodal import hide_text

LossFn = Callable[[dict[str, Tensor], Batch], tuple[Tensor, dict[str, float]]]
SaveFn = Callable[[dict[str, Any]], None]


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -1.0
    wall_s: float = 0.0


def fit(
    model: nn.Module,
    extra_modules: list[nn.Module],
    train: SplitTensors,
    dev: SplitTensors,
    task_names: tuple[str, str],
    optim: OptimConfig,
    batch_size: int,
    seed: int,
    loss_fn: LossFn,
    save_best: SaveFn,
    metrics_path: Path,
    header: dict[str, Any],
    progress: bool = True,
    frozen: list[nn.Module] | None = None,
) -> FitResult:
    params = [p for m in [model, *extra_modules] for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    steps_per_epoch = -(-len(train) // batch_size)
    scheduler = build_schedule(
        optimizer, optim.schedule, steps_per_epoch * optim.epochs, optim.warmup_ratio
    )
    generator = torch.Generator().manual_seed(seed)
    result = FitResult()
    start = time.perf_counter()
    for epoch in range(1, optim.epochs + 1):
        model.train()
        for module in extra_modules:
            module.train()
        for module in frozen or []:
            module.eval()  # fixed pretrained parts: no dropout, no gradients
        totals: dict[str, float] = {}
        seen = 0
        bar = tqdm(
            train.batches(batch_size, generator, optim.hflip, optim.crop_min_scale),
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{optim.epochs}",
            disable=not progress,
            leave=False,
        )
        for batch in bar:
            ids, mask = batch.input_ids, batch.attention_mask
            if train.empty_text is not None:
                ids, mask = hide_text(ids, mask, optim.text_dropout, generator, train.empty_text)
            out = model(batch.pixel_values, ids, mask)
            loss, parts = loss_fn(out, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}: non-finite loss {float(loss)} ({parts})")
            step(loss, optimizer, scheduler, params, optim.grad_clip)
            n = len(batch.index)
            seen += n
            for key, value in {"loss": float(loss.detach()), **parts}.items():
                totals[key] = totals.get(key, 0.0) + value * n
            bar.set_postfix(loss=f"{totals['loss'] / seen:.4f}")
        dev_metrics = evaluate(model, dev, task_names, batch_size)
        score = float(dev_metrics["mean_macro_f1"])  # type: ignore[arg-type]
        train_means = {k: v / max(seen, 1) for k, v in totals.items()}
        record: dict[str, Any] = {
            "epoch": epoch,
            "train": train_means,
            "dev": dev_metrics,
            **ablations(model, dev, task_names, batch_size),
            "elapsed_s": round(time.perf_counter() - start, 1),
        }
        result.history.append(record)
        if select_epoch(optim.select, score, result.best_score, epoch, optim.epochs):
            result.best_score, result.best_epoch = score, epoch
            save_best(record)
        result.wall_s = time.perf_counter() - start
        write_metrics(metrics_path, {**header, **summary(result)})
        print(
            f"epoch {epoch}: loss {train_means.get('loss', 0.0):.4f} "
            + " ".join(
                f"{t} f1 {dev_metrics[t]['macro_f1']:.3f}"  # type: ignore[index]
                for t in task_names
            )
            + f" mean {score:.4f}"
            + "".join(
                f" | {view} "
                + " ".join(f"{t} {record[view][t]['macro_f1']:.3f}" for t in task_names)
                for view in ("dev_image_only", "dev_text_only")
                if view in record
            )
            + (" *best*" if result.best_epoch == epoch else ""),
            flush=True,
        )
    return result


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


def select_epoch(select: str, score: float, best: float, epoch: int, epochs: int) -> bool:
    """Whether this epoch's weights become the checkpoint: the best dev score so far
    ("best"), or the final epoch whatever its score ("last": a recipe, not a dev-picked epoch)."""
    return epoch == epochs if select == "last" else score > best


def ablations(
    model: nn.Module, dev: SplitTensors, task_names: tuple[str, str], batch_size: int
) -> dict[str, Any]:
    """Dev metrics with the text left out and with a black image (evaluate's conditions)."""
    if dev.empty_text is None:
        return {}
    return {
        "dev_image_only": evaluate(model, dev.image_only(), task_names, batch_size),
        "dev_text_only": evaluate(model, dev.text_only(), task_names, batch_size),
    }


def summary(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "best_dev_mean_macro_f1": result.best_score,
        "train_wall_s": round(result.wall_s, 1),
        "epochs": result.history,
    }


def write_metrics(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
