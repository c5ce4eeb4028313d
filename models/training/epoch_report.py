"""What each training epoch leaves behind: its record (train means, dev metrics and the
unimodal ablations), the kept-epoch rule, `metrics.json` and the one log line per epoch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from models.training.evaluate import evaluate
from models.training.tensors import SplitTensors

ABLATION_VIEWS = ("dev_image_only", "dev_text_only")


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -1.0
    wall_s: float = 0.0


def epoch_record(
    model: nn.Module,
    dev: SplitTensors,
    task_names: tuple[str, str],
    batch_size: int,
    epoch: int,
    train_means: dict[str, float],
) -> dict[str, Any]:
    """The epoch's metrics.json entry, without its elapsed time."""
    return {"epoch": epoch, "train": train_means, **dev_views(model, dev, task_names, batch_size)}


def dev_views(
    model: nn.Module, dev: SplitTensors, task_names: tuple[str, str], batch_size: int
) -> dict[str, Any]:
    """Dev metrics fused ("dev"), image only and text only (`ablations`)."""
    return {
        "dev": evaluate(model, dev, task_names, batch_size),
        **ablations(model, dev, task_names, batch_size),
    }


def dev_score(record: dict[str, Any]) -> float:
    """The selection score: dev mean macro-F1 over the two tasks."""
    return float(record["dev"]["mean_macro_f1"])


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


def epoch_line(record: dict[str, Any], task_names: tuple[str, str], best: bool) -> str:
    """`epoch N: loss … <task> f1 … mean … | dev_image_only … *best*`."""
    dev = record["dev"]
    views = "".join(
        f" | {view} " + " ".join(f"{t} {record[view][t]['macro_f1']:.3f}" for t in task_names)
        for view in ABLATION_VIEWS
        if view in record
    )
    return (
        f"epoch {record['epoch']}: loss {record['train'].get('loss', 0.0):.4f} "
        + " ".join(f"{t} f1 {dev[t]['macro_f1']:.3f}" for t in task_names)
        + f" mean {dev_score(record):.4f}"
        + views
        + (" *best*" if best else "")
    )


def summary(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "best_dev_mean_macro_f1": result.best_score,
        "train_wall_s": round(result.wall_s, 1),
        "epochs": result.history,
    }


def write_metrics(path: Path, payload: dict[str, Any]) -> None:
    """Replace `path` atomically: a reader never sees half a metrics.json."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
