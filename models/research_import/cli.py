"""`fusionserve import-research --checkpoint X.pth --config X.yaml --role R --out exported/N`.

Argument parsing is torch-free; `run` imports the importer (torch, transformers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROLES = ("teacher", "student")  # = research_config.ROLES, which imports torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="research .pth (a bare state_dict, e.g. student_best.pth)",
    )
    parser.add_argument("--config", required=True, help="the run's research YAML")
    parser.add_argument("--role", required=True, choices=ROLES, help="which section to build")
    parser.add_argument("--out", required=True, help="bundle folder to write, e.g. exported/x")
    parser.add_argument(
        "--task-set",
        choices=("medpix", "wound"),
        help="dataset of the run; needed only when the YAML has no data.type",
    )
    parser.add_argument(
        "--tokenizer",
        help="tokenizer.json, vocab.txt or a Hugging Face model folder of the text model "
        "(default: the uncased BERT vocabulary where the text model uses it)",
    )
    parser.add_argument(
        "--calibrate",
        metavar="DATASET_ROOT",
        help="fit temperatures on this dataset's dev split and record dev metrics, and fit "
        "the domain check (train split; thresholds on dev) (default: temperatures 1, manifest "
        "says uncalibrated, no domain check is fitted and answers carry no domain flag)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx, shipped only if dev macro-F1 holds (needs --calibrate)",
    )
    parser.add_argument("--name", help="bundle name in the manifest (default: the --out folder)")
    parser.add_argument("--threads", type=int, help="torch/onnxruntime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=32, help="dev evaluation batch size")
    parser.add_argument(
        "--dev-limit", type=int, help="calibrate on the first N dev samples only (N >= 32)"
    )


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.int8 and not args.calibrate:
        return "--int8 needs --calibrate DATASET_ROOT (int8 ships only if dev macro-F1 holds)"
    if args.dev_limit is not None and (not args.calibrate or args.dev_limit < 32):
        return "--dev-limit needs --calibrate and N >= 32 (parity at batch 32)"
    return None


def run(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointMismatchError
    from models.data import DataError
    from models.export.cli import summary
    from models.export.onnx_export import ExportError
    from models.research_import.importer import ImportRequest, import_research

    problem = _usage_error(args)
    if problem:
        print(f"fusionserve import-research: {problem}", file=sys.stderr)
        return 2
    request = ImportRequest(
        checkpoint=Path(args.checkpoint),
        config=Path(args.config),
        role=args.role,
        out=Path(args.out),
        task_set=args.task_set,
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
        calibrate=Path(args.calibrate) if args.calibrate else None,
        int8=args.int8,
        name=args.name,
        threads=args.threads,
        batch_size=args.batch_size,
        dev_limit=args.dev_limit,
    )
    started = time.perf_counter()
    try:
        manifest = import_research(request)
    except CheckpointMismatchError as exc:
        print(f"fusionserve import-research: {request.checkpoint}: {exc}", file=sys.stderr)
        return 1
    except (ExportError, DataError, ValueError, KeyError) as exc:
        print(f"fusionserve import-research: {exc}", file=sys.stderr)
        return 1
    print(summary(manifest.model_dump(mode="json"), request.out))
    print(f"  imported in {time.perf_counter() - started:.1f} s")
    return 0
