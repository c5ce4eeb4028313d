"""PNG plots of a report: confusion matrices, reliability diagram, per-class F1, each with
fused / image-only / text-only side by side so a missing modality's cost is visible at once.

Figures are built with `matplotlib.figure.Figure` (Agg, no pyplot state, no display needed)
at a modest resolution: they are committed under docs/evaluation/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fusionserve.evaluate.conditions import CONDITIONS, TITLES

DPI = 72
COLOURS = {"fused": "#4c72b0", "image_only": "#dd8452", "text_only": "#55a868"}


def _short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def confusion_plot(report: dict[str, Any], task: str, labels: list[str], path: Path) -> None:
    """Counts per (true, predicted), shaded by the row's share (recall)."""
    side = 1.6 + 0.45 * len(labels)
    fig = Figure(figsize=(3 * side + 1, side + 0.9), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(CONDITIONS))
    for ax, condition in zip(axes, CONDITIONS, strict=True):
        matrix = np.asarray(report["results"][condition][task]["confusion_matrix"])
        share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if share[row, col] > 0.6 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)
        ticks = range(len(labels))
        ax.set_xticks(ticks, [_short(x) for x in labels], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(ticks, [_short(x) for x in labels], fontsize=8)
        acc = report["results"][condition][task]["accuracy"]
        ax.set_title(f"{TITLES[condition]} (acc {acc:.3f})", fontsize=10)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0].set_ylabel("true", fontsize=8)
    fig.suptitle(f"{report['bundle']['name']}: {task} confusion matrix", fontsize=11)
    fig.savefig(path)


def reliability_plot(report: dict[str, Any], tasks: list[str], path: Path) -> None:
    """Accuracy against mean confidence per non-empty bin; the diagonal is perfect calibration."""
    fig = Figure(figsize=(4.2 * len(tasks), 4.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(tasks))
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for condition in CONDITIONS:
            scores = report["results"][condition][task]
            bins = [b for b in scores["reliability"] if b["count"] > 0]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                marker="o",
                markersize=3,
                color=COLOURS[condition],
                label=f"{TITLES[condition]} (ECE {scores['ece']:.3f})",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top label)", fontsize=9)
        ax.set_ylabel("accuracy", fontsize=9)
        ax.set_title(task, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{report['bundle']['name']}: reliability", fontsize=11)
    fig.savefig(path)


def per_class_f1_plot(report: dict[str, Any], tasks: dict[str, list[str]], path: Path) -> None:
    """Horizontal grouped bars: one group per class, one bar per condition."""
    rows = max(len(labels) for labels in tasks.values())
    fig = Figure(figsize=(5.0 * len(tasks), 1.5 + 0.42 * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(tasks))
    height = 0.8 / len(CONDITIONS)
    for ax, (task, labels) in zip(np.atleast_1d(axes), tasks.items(), strict=True):
        positions = np.arange(len(labels))
        for k, condition in enumerate(CONDITIONS):
            per_class = report["results"][condition][task]["per_class"]
            ax.barh(
                positions + (k - (len(CONDITIONS) - 1) / 2) * height,
                [per_class[label]["f1"] for label in labels],
                height=height,
                color=COLOURS[condition],
                label=TITLES[condition],
            )
        ax.set_yticks(positions, [_short(x, 18) for x in labels], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("F1", fontsize=9)
        ax.set_title(task, fontsize=10)
    handles, names = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(CONDITIONS), fontsize=8)
    fig.suptitle(f"{report['bundle']['name']}: per-class F1", fontsize=11)
    fig.savefig(path)


def write_plots(report: dict[str, Any], labels: dict[str, list[str]], out: Path) -> list[str]:
    """Every plot of the report into `out`; returns the file names, in display order."""
    names = []
    for task, task_labels in labels.items():
        confusion_plot(report, task, task_labels, out / f"confusion_{task}.png")
        names.append(f"confusion_{task}.png")
    reliability_plot(report, list(labels), out / "reliability.png")
    per_class_f1_plot(report, labels, out / "per_class_f1.png")
    return [*names, "reliability.png", "per_class_f1.png"]
