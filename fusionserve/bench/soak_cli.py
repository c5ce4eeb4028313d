"""`fusionserve bench soak`: options (cheap, torch-free) and the entry that runs the soak."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DATASETS = Path("../shared/datasets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, required=True, help="soak length")
    parser.add_argument("--bundle-dir", type=Path, default=Path("exported"), help="bundles")
    parser.add_argument("--model", default="medpix-student", help="bundle served and soaked")
    parser.add_argument("--task-set", default="medpix", choices=["medpix", "wound"])
    parser.add_argument(
        "--datasets-root", type=Path, default=DEFAULT_DATASETS, help="shared datasets folder"
    )
    parser.add_argument("--samples", type=int, default=64, help="distinct dev samples")
    parser.add_argument(
        "--fraction", type=float, default=0.7, help="offered rate as a fraction of the max rate"
    )
    parser.add_argument("--rate", type=float, help="offered rate in req/s (skips measuring)")
    parser.add_argument(
        "--rate-requests", type=int, default=400, help="requests timed to measure the max rate"
    )
    parser.add_argument(
        "--burst-concurrency",
        type=int,
        default=256,
        help="warm-up burst: this many clients at once (default: QUEUE_SIZE; 0 = none)",
    )
    parser.add_argument("--window-s", type=float, default=60.0, help="report window (seconds)")
    parser.add_argument("--sample-s", type=float, default=2.0, help="/proc sampling period")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="also write every window and sample as JSON")


def run(args: argparse.Namespace) -> int:
    from fusionserve.bench.soak import run as run_soak

    return run_soak(args)
