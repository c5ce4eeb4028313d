"""Turn one run's results into the ratios the targets are stated in, a Markdown report and JSON.

The targets are ratios measured within one run (never absolute numbers): a noisy, shared
machine shifts every figure together, ratios much less. Each target says whether it holds;
a missing part (no teacher bundle, no checkpoint) is reported as not measured, never guessed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.contract.manifest import Manifest
from fusionserve.bench.loadgen import LoadResult
from fusionserve.bench.old_vs_new import baseline_section, baseline_targets
from fusionserve.bench.server_compare import (
    latency_section,
    paired_section,
    server_section,
    server_targets,
    stages_section,
)
from fusionserve.bench.suite import REPO_ROOT, BenchResults, ServedRun, Variant, median
from fusionserve.bench.target import Target, fmt

PACKAGES = ("onnxruntime", "numpy", "pillow", "tokenizers", "fastapi", "uvicorn", "httpx", "torch")
SETTINGS_SHOWN = (
    "providers",
    "intra_op_threads",
    "inter_op_threads",
    "concurrent_runs",
    "graph_optimization",
    "max_batch_size",
    "max_delay_ms",
    "queue_size",
    "preprocess_workers",
    "workers",
)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


_fmt = fmt


def _levels(results: BenchResults) -> tuple[int, int]:
    levels = sorted(results.config.requests)
    return levels[0], levels[-1]


def _faster(fast: Variant, slow: Variant, high: int) -> tuple[float | None, float | None]:
    """(served throughput ratio at `high`, graph-alone ratio) of `fast` over `slow`."""
    served = _ratio(fast.served.level(high).throughput, slow.served.level(high).throughput)
    graph = _ratio(fast.ceiling.inference_items_per_s, slow.ceiling.inference_items_per_s)
    return served, graph


def ratios(results: BenchResults) -> dict[str, float | None]:
    """The target ratios and the CPU figures behind them (None where not measured)."""
    low, high = _levels(results)
    main = results.variants[0]
    served_hi = main.served.level(high)
    out: dict[str, float | None] = {
        "served_over_ceiling": _ratio(served_hi.throughput, main.ceiling.throughput),
        "low_p50_minus_ceiling_single_ms": main.served.level(low).p50 - main.ceiling.single_p50,
        "served_over_naive": None,
        "naive_p99_ms": None,
        "served_p99_ms": served_hi.p99,
        "student_over_teacher": None,
        "student_over_teacher_inference_only": None,
        "int8_over_fp32": None,
        "int8_over_fp32_inference_only": None,
        "cold_start_s": median(results.cold_starts_s),
        "served_server_cpu_ms_per_request": served_hi.server_cpu_ms_per_request,
        "served_client_cpu_ms_per_request": served_hi.client_cpu_ms_per_request,
        "ceiling_cpu_ms_per_item": main.ceiling.cpu_ms_per_item,
        "naive_server_cpu_ms_per_request": None,
        "low_p50_ms": main.served.level(low).p50,
        "ceiling_single_p50_ms": main.ceiling.single_p50,
        "http_floor_p50_ms": main.served.http_floor.p50 if main.served.http_floor else None,
    }
    if results.naive is not None:
        naive_hi = results.naive.level(high)
        out["served_over_naive"] = _ratio(served_hi.throughput, naive_hi.throughput)
        out["naive_p99_ms"] = naive_hi.p99
        out["naive_server_cpu_ms_per_request"] = naive_hi.server_cpu_ms_per_request
    if (teacher := results.variant("teacher fp32")) is not None:
        out["student_over_teacher"], out["student_over_teacher_inference_only"] = _faster(
            main, teacher, high
        )
    if (int8 := results.variant("student int8")) is not None:
        out["int8_over_fp32"], out["int8_over_fp32_inference_only"] = _faster(int8, main, high)
    return out


def targets(results: BenchResults) -> list[Target]:
    r = ratios(results)
    low, high = _levels(results)

    def at_least(value: float | None, goal: float) -> bool | None:
        return None if value is None else value >= goal

    p99_lower = None
    if r["naive_p99_ms"] is not None and r["served_p99_ms"] is not None:
        p99_lower = r["served_p99_ms"] < r["naive_p99_ms"]
    naive_holds = None
    if r["served_over_naive"] is not None:
        naive_holds = bool(at_least(r["served_over_naive"], 4.0)) and bool(p99_lower)
    delta = r["low_p50_minus_ceiling_single_ms"]
    return [
        Target(
            f"served throughput c={high} vs ceiling",
            "≥ 0.85×",
            f"{_fmt(r['served_over_ceiling'])}×",
            at_least(r["served_over_ceiling"], 0.85),
        ),
        Target(
            f"served vs naive baseline c={high}",
            "≥ 4× and lower p99",
            f"{_fmt(r['served_over_naive'])}×; p99 {_fmt(r['served_p99_ms'], 1)} ms vs "
            f"{_fmt(r['naive_p99_ms'], 1)} ms",
            naive_holds,
        ),
        Target(
            f"p50 c={low} minus ceiling single-item latency",
            "≤ 1.5 ms",
            f"{_fmt(delta)} ms (p50 {_fmt(r['low_p50_ms'])} vs {_fmt(r['ceiling_single_p50_ms'])}"
            f" ms; bare HTTP round trip p50 {_fmt(r['http_floor_p50_ms'])} ms)",
            None if delta is None else delta <= 1.5,
        ),
        Target(
            f"student vs teacher throughput c={high}",
            "≥ 5×",
            f"{_fmt(r['student_over_teacher'])}× (graph alone "
            f"{_fmt(r['student_over_teacher_inference_only'])}×)",
            at_least(r["student_over_teacher"], 5.0),
        ),
        Target(
            f"int8 vs fp32 throughput c={high}",
            "≥ 1.6×",
            f"{_fmt(r['int8_over_fp32'])}× (graph alone "
            f"{_fmt(r['int8_over_fp32_inference_only'])}×)",
            at_least(r["int8_over_fp32"], 1.6),
        ),
        Target(
            "cold start, student bundle (median)",
            "≤ 2 s",
            f"{_fmt(r['cold_start_s'])} s",
            None if r["cold_start_s"] is None else r["cold_start_s"] <= 2.0,
        ),
    ]


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": _cpu_model(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "loadavg_at_report": os.getloadavg(),
    }


def _level_row(name: str, load: LoadResult) -> str:
    failures = ", ".join(f"{k or 'conn'}:{v}" for k, v in sorted(load.failures.items())) or "0"
    phases = load.server_phases_ms
    phase = (
        f"{phases['queue']:.1f} / {phases['preprocess']:.1f} / {phases['inference']:.1f}"
        if phases
        else "—"
    )
    cores = None
    if load.server_cpu_s is not None and load.wall_s > 0:
        cores = load.server_cpu_s / load.wall_s
    return (
        f"| {name} | {load.concurrency} | {load.requests} | {failures} | "
        f"{load.throughput:.1f} | {load.p50:.1f} | {load.p95:.1f} | {load.p99:.1f} | {phase} | "
        f"{_fmt(load.server_cpu_ms_per_request)} ({_fmt(cores)}) | "
        f"{load.client_cpu_ms_per_request:.2f} | {_fmt(load.mean_batch, 1)} |"
    )


def _resolved(results: BenchResults) -> str:
    """'label: N runs at once × ≤ M items' per served variant (0 = auto in the settings)."""
    parts = []
    for variant in results.variants:
        run = variant.served
        size = "?" if run.max_batch_size is None else str(run.max_batch_size)
        parts.append(f"{variant.label}: {run.concurrent_runs} run(s) at once × ≤ {size} items")
    return "; ".join(parts)


def _served_rows(run: ServedRun) -> list[str]:
    return [_level_row(run.label, level) for level in run.levels]


def _ceiling_row(variant: Variant) -> str:
    c = variant.ceiling
    return (
        f"| {variant.label} | {c.items} | {c.batch_size} | {c.workers} | {c.throughput:.1f} | "
        f"{c.cpu_ms_per_item:.2f} | {c.single_p50:.2f} | {c.preprocess_ms:.2f} | "
        f"{c.inference_items_per_s:.1f} |"
    )


def _bundles(results: BenchResults) -> str:
    """Each benchmarked bundle's identity, so the numbers can be tied to exact graphs."""
    seen = []
    for name in dict.fromkeys(v.bundle for v in results.variants):
        try:
            manifest = Manifest.load(results.config.bundle_dir / name)
        except (OSError, ValueError):
            seen.append(f"`{name}`")
            continue
        seen.append(
            f"`{name}` ({manifest.role}, {manifest.fusion}, {manifest.parameter_count:,} "
            f"parameters, version {manifest.version}, L={manifest.preprocessing.max_text_length})"
        )
    checkpoint = results.config.checkpoint
    naive = f"; naive baseline from `{checkpoint}`" if checkpoint else ""
    return ", ".join(seen) + naive


def _cpu_section(results: BenchResults, r: dict[str, float | None]) -> list[str]:
    """CPU cost per request at the top concurrency: what serving adds to the pipeline."""
    _, high = _levels(results)
    ceiling, served = r["ceiling_cpu_ms_per_item"], r["served_server_cpu_ms_per_request"]
    client, naive = r["served_client_cpu_ms_per_request"], r["naive_server_cpu_ms_per_request"]
    overhead = served - ceiling if served is not None and ceiling is not None else None
    bound = 2000.0 / (served + client) if served and client is not None else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if bound is not None and cores:
        bound *= cores / 2
    return [
        f"## CPU per request (c={high}, {results.variants[0].label})",
        "",
        "| where | CPU ms per request |",
        "|---|---|",
        f"| ceiling pipeline (decode + tokenize + graph, in-process) | {_fmt(ceiling)} |",
        f"| served process (all threads) | {_fmt(served)} |",
        f"| — of which serving adds (HTTP, multipart, queues, JSON) | {_fmt(overhead)} |",
        f"| load generator (same machine) | {_fmt(client)} |",
        f"| naive baseline process | {_fmt(naive)} |",
        "",
        f"With {cores} cores shared by server and load generator, the CPU alone bounds the "
        f"served rate near {_fmt(bound, 0)} req/s.",
    ]


def render_markdown(results: BenchResults, command: str, machine: dict[str, Any]) -> str:
    r = ratios(results)
    cfg = results.config
    shown = {k: results.settings.get(k) for k in SETTINGS_SHOWN}
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` on {results.started_at} (commit {machine['git_commit']}), "
        f"in {results.duration_s:.0f} s. Task set `{results.task_set}`; bundles from "
        f"`{cfg.bundle_dir}`; {cfg.samples} distinct dev samples (real images + texts) cycled; "
        f"fixed request counts per concurrency {dict(cfg.requests)} after {cfg.warmup} "
        "warm-up requests each.",
        "",
        *(
            [
                f"**Profiled run** (py-spy attached at the top concurrency, profiles in "
                f"`{cfg.profile_dir}`): sampling perturbs these numbers; diagnosis only.",
                "",
            ]
            if cfg.profile_dir is not None
            else []
        ),
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores_usable']} usable cores; {machine['platform']}; "
        f"Python {machine['python']}",
        "- " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()),
        f"- Server settings: {shown}",
        f"- Batching as each server resolved it (its `/models`): {_resolved(results)}",
        f"- Bundles: {_bundles(results)}",
        "- Honesty note: the load generator (keep-alive raw HTTP/1.1 connections, this "
        "process, `fusionserve.bench.wire`), the server process "
        "and its threads all share the same cores on loopback, and other work on this shared "
        "machine may run at the same time (load averages per run below). CPU milliseconds per "
        "request (server process; load generator) show how the cores were split and are far "
        "less sensitive to other load than wall-clock rates.",
        "",
        "## Targets (ratios within this run)",
        "",
        "| target | goal | measured | holds |",
        "|---|---|---|---|",
    ]
    for t in [*server_targets(results), *targets(results), *baseline_targets(results)]:
        verdict = "not measured" if t.holds is None else ("yes" if t.holds else "**no**")
        lines.append(f"| {t.name} | {t.goal} | {t.measured} | {verdict} |")
    lines += ["", *server_section(results), *paired_section(results)]
    lines += [*latency_section(results), *stages_section(results)]
    lines += [*baseline_section(results), *_cpu_section(results, r)]
    lines += [
        "",
        "## Load generator runs (HTTP on loopback)",
        "",
        "Latency in ms, measured by the client around the whole exchange; throughput in "
        "successful requests/s; server phases are the service's own `timing_ms` means "
        "(queue / preprocess / inference); mean batch is the items per graph run the server's "
        "batcher formed at that level (from its `fusionserve_batch_size` histogram).",
        "",
        "| run | concurrency | requests | failures | req/s | p50 | p95 | p99 | "
        "server phases ms | server CPU ms/req (cores) | client CPU ms/req | mean batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = [v.served for v in results.variants]
    if results.naive is not None:
        runs.append(results.naive)
    for run in runs:
        lines += _served_rows(run)
    lines += [
        "",
        "## Ceiling (same pipeline in-process, no HTTP)",
        "",
        "| bundle | items | batch | decode workers | items/s | CPU ms/item | "
        "single-item p50 ms | decode+tokenize ms/item | graph alone items/s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_ceiling_row(v) for v in results.variants),
        "",
        "## Cold start and memory",
        "",
        "| process | ready after (s) | peak RSS (MiB) | load avg at start |",
        "|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.label} ({run.bundle}) | {run.ready_s:.2f} | {_fmt(run.peak_rss_mb, 0)} | "
            f"{' / '.join(f'{x:.2f}' for x in run.loadavg)} |"
        )
    lines += [
        "",
        f"Student cold starts (process start → `/health/ready` 200), all launches: "
        f"{', '.join(f'{s:.2f}' for s in results.cold_starts_s)} s; median "
        f"{_fmt(r['cold_start_s'])} s.",
        "",
    ]
    return "\n".join(lines)


def results_json(results: BenchResults, command: str, machine: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, plus derived figures, as plain JSON (for tooling and tests)."""
    raw = asdict(results)
    raw["config"] = {
        **raw["config"],
        "bundle_dir": str(results.config.bundle_dir),
        "datasets_root": str(results.config.datasets_root),
        "checkpoint": str(results.config.checkpoint) if results.config.checkpoint else None,
        "profile_dir": str(results.config.profile_dir) if results.config.profile_dir else None,
        "requests": {str(k): v for k, v in results.config.requests.items()},
        "server_env": dict(results.config.server_env),
    }
    runs = [*(v.served for v in results.variants), *([results.naive] if results.naive else [])]
    # closed-loop levels by concurrency; the open-loop run (Poisson arrivals: its
    # concurrency is only the most it saw in flight) under "open_loop"
    raw["summary"] = {
        run.label: {
            **{str(level.concurrency): _level_summary(level) for level in run.levels},
            **({"open_loop": _level_summary(run.open_loop)} if run.open_loop else {}),
        }
        for run in runs
    }
    raw["ratios"] = ratios(results)
    every = [*server_targets(results), *targets(results), *baseline_targets(results)]
    raw["targets"] = [asdict(t) for t in every]
    raw["command"] = command
    raw["machine"] = machine
    return raw


def write_report(
    results: BenchResults, command: str, markdown_path: Path, json_path: Path | None
) -> str:
    """Write RESULTS.md (and the JSON when asked); returns the Markdown."""
    machine = machine_info()
    text = render_markdown(results, command, machine)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(text, encoding="utf-8")
    if json_path is not None:
        payload = results_json(results, command, machine)
        json_path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return text


def _level_summary(level: Any) -> dict[str, Any]:
    return {
        "throughput": level.throughput,
        "p50_ms": level.p50,
        "p95_ms": level.p95,
        "p99_ms": level.p99,
        "ok": level.ok,
        "failures": {str(k): v for k, v in level.failures.items()},
        "server_cpu_ms_per_request": level.server_cpu_ms_per_request,
        "client_cpu_ms_per_request": level.client_cpu_ms_per_request,
    }
