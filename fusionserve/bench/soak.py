"""Soak with bounds: a real `fusionserve serve`, its maximum rate measured briefly (closed loop
at the top concurrency, as the benchmark's open-loop level does), a burst at the server's
admission limit, then M minutes of the request mix (`fusionserve.bench.soak_requests`) at a
fraction of the rate (Poisson arrivals), the server process sampled from /proc throughout.

The burst is part of the warm-up: RSS is a high-water mark (glibc arenas, onnxruntime's arena
grow with the deepest queue and the largest batch met, and keep what they took), so a server
that first meets a deep queue mid-soak — a neighbour took the CPU for a while — steps up once
and stays flat (a 30-minute run on a shared machine showed two such steps, both in windows
whose p99 was over 1.5 s). Filling the queue first makes growth after warm-up mean a leak.

Per window: p99 of valid requests, RSS, fds, threads, statuses; then the bounds
(`fusionserve.bench.soak_bounds`). Non-zero exit when one fails.

    fusionserve bench soak --minutes 30 --out soak.md --json soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time

from fusionserve.bench.coldstart import ServerFailed, free_port, running_server
from fusionserve.bench.loadgen import run_load
from fusionserve.bench.report import machine_info
from fusionserve.bench.samples import load_dev_samples, multipart_body
from fusionserve.bench.soak_bounds import check_bounds
from fusionserve.bench.soak_drive import Soak, SoakPlan
from fusionserve.bench.soak_report import SoakRun, markdown, write_json
from fusionserve.bench.soak_requests import DEFAULT_MIX, build_mix
from fusionserve.bench.soak_windows import summarize
from fusionserve.bench.suite import REPO_ROOT, serve_command
from fusionserve.bench.wire import Target

RATE_CONCURRENCY = 32  # the benchmark's top level: the rate the server sustains saturated
RATE_WARMUP = 32
BURST_ROUNDS = 2  # requests per connection in the admission-limit burst


def command_line(args: argparse.Namespace) -> str:
    argv = [
        "fusionserve", "bench", "soak", "--minutes", f"{args.minutes:g}",
        "--bundle-dir", str(args.bundle_dir), "--model", args.model,
        "--task-set", args.task_set, "--fraction", f"{args.fraction:g}",
        "--window-s", f"{args.window_s:g}", "--burst-concurrency", str(args.burst_concurrency),
    ]  # fmt: skip
    if args.rate is not None:
        argv += ["--rate", f"{args.rate:g}"]
    return shlex.join(argv)


def measure_max_rate(base_url: str, bodies: list[tuple[bytes, str]], requests: int) -> float:
    """Valid requests per second at RATE_CONCURRENCY, closed loop."""
    load = asyncio.run(
        run_load(f"{base_url}/predict", bodies, RATE_CONCURRENCY, requests, RATE_WARMUP)
    )
    if load.ok < requests:
        raise ServerFailed(f"rate measurement: only {load.ok}/{requests} answered 200 "
                           f"({load.failures})")  # fmt: skip
    return load.throughput


def burst(base_url: str, bodies: list[tuple[bytes, str]], concurrency: int) -> None:
    """`concurrency` clients at once (QUEUE_SIZE by default: all the server admits); answers,
    429s included, are not counted: this is warm-up."""
    if concurrency > 0:
        asyncio.run(
            run_load(f"{base_url}/predict", bodies, concurrency, BURST_ROUNDS * concurrency)
        )


def run(args: argparse.Namespace) -> int:
    samples = load_dev_samples(args.task_set, args.datasets_root, limit=args.samples)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = serve_command(args.bundle_dir, args.model, "fp32", port)
    env = {"FUSIONSERVE_DEFAULT_TASK_SET": args.task_set}
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    loadavg = os.getloadavg()
    with running_server(cmd, base_url, env, cwd=REPO_ROOT) as server:
        max_rate = None
        bodies = [multipart_body(s) for s in samples]
        if args.rate is None:
            max_rate = measure_max_rate(base_url, bodies, args.rate_requests)
        burst(base_url, bodies, args.burst_concurrency)
        rate = args.rate or args.fraction * (max_rate or 0.0)
        print(f"soak: {args.minutes:g} min at {rate:.1f} req/s", file=sys.stderr, flush=True)
        target = Target("127.0.0.1", port, "/predict")
        plan = SoakPlan(
            base=target,
            pid=server.pid,
            mix=build_mix(target, samples),
            rate_per_s=rate,
            duration_s=60.0 * args.minutes,
            window_s=args.window_s,
            sample_s=min(args.sample_s, args.window_s / 4),
            seed=args.seed,
        )
        try:
            outcome = asyncio.run(Soak(plan).run())
        except OSError as exc:  # the server process is gone
            raise ServerFailed(f"soak stopped: {exc}\n{server.log_tail()}") from exc
    windows = [summarize(i, t) for i, t in enumerate(outcome.tallies)]
    bounds = check_bounds(windows, outcome.rest_before, outcome.rest_after)
    machine = machine_info()
    soak_run = SoakRun(
        command=command_line(args),
        started_at=started_at,
        commit=str(machine["git_commit"]),
        model=args.model,
        minutes=args.minutes,
        window_s=args.window_s,
        max_rate=max_rate,
        fraction=args.fraction,
        rate=rate,
        mix=dict(DEFAULT_MIX),
        cores=int(machine["cores_usable"] or os.cpu_count() or 1),
        loadavg=loadavg,
    )
    text = markdown(soak_run, windows, bounds)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    if args.json is not None:
        write_json(args.json, soak_run, windows, bounds, outcome)
    return 0 if all(b.ok for b in bounds) else 1
