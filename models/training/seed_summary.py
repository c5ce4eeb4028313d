"""Mean ± std of the kept epoch's dev metrics over training runs (seeds of one recipe).

    python -m models.training.seed_summary RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds a `metrics.json` written by `fusionserve train`. The kept epoch is the
checkpointed one (`best_epoch`; with `optim.select: last` that is simply the final epoch), and
its fused, image-only and text-only dev metrics are read from the per-epoch history; a
late-fused run's are its own. Cross-validation folds (`models.training.cv_folds`) summarise
the same way, one run per fold.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VIEWS = {"fused": "dev", "image only": "dev_image_only", "text only": "dev_text_only"}
METRICS = ("macro_f1", "accuracy")


def kept_epoch(metrics: dict[str, Any]) -> dict[str, Any]:
    """The kept epoch's record; a late-fused run (`late_fusion` in its metrics) has no epochs:
    its own dev views are the record (the network's epochs sit in its `network/` folder)."""
    if "late_fusion" in metrics:
        return metrics
    best = int(metrics["best_epoch"])
    return next(e for e in metrics["epochs"] if e["epoch"] == best)


def collect(run_dirs: Sequence[Path]) -> dict[tuple[str, str, str], list[float]]:
    """(view, task, metric) → one value per run."""
    values: dict[tuple[str, str, str], list[float]] = {}
    for run in run_dirs:
        epoch = kept_epoch(json.loads((run / "metrics.json").read_text(encoding="utf-8")))
        for view, key in VIEWS.items():
            for task, scores in (epoch.get(key) or {}).items():
                if not isinstance(scores, dict):
                    continue
                for metric in METRICS:
                    values.setdefault((view, task, metric), []).append(float(scores[metric]))
    return values


def mean_std(values: Sequence[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def render(values: dict[tuple[str, str, str], list[float]], runs: int) -> str:
    """Markdown table: one row per task and metric, one column per view."""
    tasks = list(dict.fromkeys(task for _, task, _ in values))
    lines = [
        f"| task (n = {runs} runs) | " + " | ".join(VIEWS) + " |",
        "|---|" + "---|" * len(VIEWS),
    ]
    for task in tasks:
        for metric in METRICS:
            cells = [
                mean_std(values[(view, task, metric)]) if (view, task, metric) in values else "–"
                for view in VIEWS
            ]
            lines.append(f"| {task} {metric.replace('_', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training output folders")
    args = parser.parse_args(argv)
    print(render(collect(args.runs), len(args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
