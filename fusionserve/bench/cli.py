"""`fusionserve bench`: measure the served pipeline against its ceiling, a naive baseline,
the teacher and int8, and cold start; print and write bench/RESULTS.md.

`add_arguments` is torch-free and cheap; `run` imports the benchmark (still torch-free: the
naive baseline runs torch in its own process).
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
from dataclasses import replace
from pathlib import Path

from fusionserve.bench import soak_cli

DEFAULT_REQUESTS = "1:200,8:400,32:800"
DEFAULT_CHECKPOINTS = Path("../artifacts/checkpoints")
DEFAULT_DATASETS = Path("../shared/datasets")


def parse_requests(value: str) -> dict[int, int]:
    """'1:200,8:400,32:800' → {1: 200, 8: 400, 32: 800} (concurrency: measured requests)."""
    levels: dict[int, int] = {}
    try:
        for part in value.split(","):
            concurrency, count = part.split(":")
            levels[int(concurrency)] = int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'C:N,C:N,...', got {value!r}") from None
    if not levels or min(levels) < 1 or min(levels.values()) < 1:
        raise argparse.ArgumentTypeError("concurrency and request counts must be >= 1")
    return levels


def parse_env(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    if not sep or not key.startswith("FUSIONSERVE_"):
        raise argparse.ArgumentTypeError(f"expected FUSIONSERVE_NAME=value, got {value!r}")
    return key, setting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle-dir", type=Path, default=Path("exported"), help="bundles")
    parser.add_argument("--student", default="medpix-student", help="student bundle name")
    parser.add_argument(
        "--teacher", help="teacher bundle (default: the student's name with -teacher; 'none')"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="student torch checkpoint for the naive baseline (default: "
        f"{DEFAULT_CHECKPOINTS}/<student>/best.pt; 'none' skips the baseline)",
    )
    parser.add_argument(
        "--datasets-root", type=Path, default=DEFAULT_DATASETS, help="shared datasets folder"
    )
    parser.add_argument(
        "--requests",
        type=parse_requests,
        default=parse_requests(DEFAULT_REQUESTS),
        help=f"concurrency:requests list (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per level")
    parser.add_argument("--samples", type=int, default=64, help="distinct dev samples, cycled")
    parser.add_argument(
        "--single-items", type=int, default=100, help="ceiling single-item latency passes"
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="student launches timed")
    parser.add_argument(
        "--server-env",
        type=parse_env,
        action="append",
        default=[],
        metavar="FUSIONSERVE_NAME=VALUE",
        help="setting for the served process and the ceiling (repeatable)",
    )
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also measure the student bundle as committed at this git revision (old vs new "
        "in one run)",
    )
    parser.add_argument(
        "--server-rev",
        metavar="REV",
        help="also serve the student fp32 with the server code at this git revision (today's "
        "server beside the new one: same bundle, same run)",
    )
    parser.add_argument(
        "--server-rev-overlay",
        metavar="PATH",
        nargs="+",
        default=[],
        help="with --server-rev: these files come from this commit instead (the model contract a "
        "newer bundle needs, e.g. app/contract/domain.py), so only the HTTP path differs",
    )
    parser.add_argument(
        "--paired-rounds",
        type=int,
        default=6,
        help="with --server-rev: rounds of paired throughput at the top concurrency, both "
        "servers up and driven in turn (the speed-up target reads their median; 0 = off)",
    )
    parser.add_argument(
        "--open-loop-fraction",
        type=float,
        default=0.7,
        help="open-loop (Poisson) rate as a fraction of each server's best closed-loop rate",
    )
    parser.add_argument(
        "--stages",
        type=Path,
        metavar="DIR",
        help="one more profiled pass at the top concurrency per server (after the measured "
        "ones): flame graph SVG, raw stacks, and the per-stage CPU table in the report",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/RESULTS.md"), help="Markdown report path"
    )
    parser.add_argument("--json", type=Path, help="also write every measurement as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy profiles of each server at the top concurrency into DIR (perturbs the "
        "numbers: use for diagnosis, not for RESULTS.md)",
    )
    sub = parser.add_subparsers(dest="bench_command", metavar="soak")
    soak_cli.add_arguments(
        sub.add_parser("soak", help="M minutes of mixed traffic at 70 %% of the max rate, bounds")
    )


def _optional_path(value: Path | None, default: Path) -> Path | None:
    if value is not None and str(value).lower() == "none":
        return None
    path = value or default
    return path if path.is_file() or value is not None else None


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every option explicit (defaults included)."""
    argv = [
        "fusionserve", "bench", "--bundle-dir", str(args.bundle_dir), "--student", args.student,
        "--requests", ",".join(f"{c}:{n}" for c, n in sorted(args.requests.items())),
        "--warmup", str(args.warmup), "--samples", str(args.samples),
        "--single-items", str(args.single_items), "--cold-starts", str(args.cold_starts),
        "--datasets-root", str(args.datasets_root), "--out", str(args.out),
        "--open-loop-fraction", str(args.open_loop_fraction),
        "--paired-rounds", str(args.paired_rounds),
    ]  # fmt: skip
    for flag, value in (
        ("--teacher", args.teacher),
        ("--checkpoint", args.checkpoint),
        ("--baseline-rev", args.baseline_rev),
        ("--server-rev", args.server_rev),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if args.server_rev_overlay:
        argv += ["--server-rev-overlay", *args.server_rev_overlay]
    for key, value in args.server_env:
        argv += ["--server-env", f"{key}={value}"]
    for flag, path in (
        ("--json", args.json),
        ("--profile", args.profile),
        ("--stages", args.stages),
    ):
        if path is not None:
            argv += [flag, str(path)]
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "bench_command", None) == "soak":
        return soak_cli.run(args)
    from fusionserve.bench.baseline import extract_bundle
    from fusionserve.bench.report import write_report
    from fusionserve.bench.server_rev import extract_server, overlay
    from fusionserve.bench.suite import REPO_ROOT, BenchConfig, run_bench

    teacher = args.teacher or args.student.replace("-student", "-teacher")
    if teacher.lower() == "none" or not (args.bundle_dir / teacher).is_dir():
        teacher = None
    config = BenchConfig(
        bundle_dir=args.bundle_dir,
        student=args.student,
        teacher=teacher,
        checkpoint=_optional_path(args.checkpoint, DEFAULT_CHECKPOINTS / args.student / "best.pt"),
        datasets_root=args.datasets_root,
        requests=args.requests,
        warmup=args.warmup,
        samples=args.samples,
        single_items=args.single_items,
        cold_starts=max(1, args.cold_starts),
        server_env=dict(args.server_env),
        profile_dir=args.profile,
        open_loop_fraction=args.open_loop_fraction,
        stages_dir=args.stages,
        paired_rounds=max(0, args.paired_rounds),
    )
    with tempfile.TemporaryDirectory(prefix="fusionserve-baseline-") as scratch:
        if args.server_rev:
            code = extract_server(REPO_ROOT, args.server_rev, Path(scratch) / "server")
            overlay(REPO_ROOT, tuple(args.server_rev_overlay), code)
            config = replace(
                config,
                server_rev=args.server_rev,
                server_rev_dir=code,
                server_rev_overlay=tuple(args.server_rev_overlay),
            )
        if args.baseline_rev:
            relative = (args.bundle_dir / args.student).resolve().relative_to(REPO_ROOT)
            folder = extract_bundle(
                REPO_ROOT, args.baseline_rev, relative.as_posix(), Path(scratch)
            )
            config = replace(config, baseline_dir=folder.parent, baseline_rev=args.baseline_rev)
        results = run_bench(config)
    print(write_report(results, command_line(args), args.out, args.json))
    return 0
