"""`fusionserve evaluate --bundle exported/NAME --data DATASET_ROOT --split dev [--url URL]
--out DIR`: score a bundle in-process, or the server at URL, on a dataset split, fused and
image only / text only, and write report.json, report.md and PNG plots into DIR.

`add_arguments` is cheap and torch-free; `run` imports onnxruntime, scikit-learn and
matplotlib (the `train` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        type=Path,
        required=True,
        help="bundle folder, e.g. "
        "exported/medpix-student (with --url: the bundle the server serves)",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="dataset folder (MedPix-2.0 or Wound-1-0 layout)"
    )
    parser.add_argument("--split", default="dev", help="dataset split (default: dev)")
    parser.add_argument(
        "--ood-data",
        type=Path,
        help="the other task set's dataset folder: its --split cases (images with their "
        "texts) measure the domain check (flag rates, AUROC); synthetic images always do",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the report and plots")
    parser.add_argument("--url", help="score a running server (its /predict/batch) instead")
    parser.add_argument(
        "--model", help="with --url: the model name there (default: the bundle folder's name)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FUSIONSERVE_API_KEY"),
        help="with --url: API key (default: $FUSIONSERVE_API_KEY)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        help="in-process graph (default fp32; with --url the server's setting decides)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="in-process onnxruntime intra-op threads (default 1)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="items per call / per /predict/batch request (default 32)",
    )
    parser.add_argument("--limit", type=positive_int, help="score only the first N cases")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from fusionserve.evaluate.errors import EvaluateError
    from fusionserve.evaluate.main import evaluate

    try:
        report = evaluate(args)
    except EvaluateError as exc:
        print(f"fusionserve evaluate: {exc}", file=sys.stderr)
        return 2
    for condition, scores in report["results"].items():
        summary = ", ".join(
            f"{task} acc {s['accuracy']:.3f} F1 {s['macro_f1']:.3f}"
            for task, s in scores.items()
            if task != "modality_weights"
        )
        print(f"{condition:>10}: {summary}")
    from fusionserve.evaluate.report import domain_summary

    for line in domain_summary(report.get("domain")):
        print(f"{'domain':>10}: {line}")
    print(f"wrote {args.out / 'report.md'}")
    return 0
