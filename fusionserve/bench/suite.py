"""One benchmark run: ceiling, served, naive baseline, variants and cold starts, in a fixed order.

Per variant (student fp32, student int8, teacher fp32) the in-process ceiling is measured just
before the served run, so each pair sees the same machine conditions. The served server and the
naive baseline are separate processes on loopback; the load generator runs in this process, so
client and server share the same cores — the report says so and shows how the CPU was split.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.contract.manifest import INT8_MODEL_FILE, Manifest
from app.settings import Settings
from fusionserve.bench.ceiling import CeilingResult, measure_ceiling, pipeline_pass
from fusionserve.bench.coldstart import ServerProcess, free_port, running_server, start_server
from fusionserve.bench.flamegraph import render
from fusionserve.bench.loadgen import LoadResult, run_load
from fusionserve.bench.open_loop import run_open_loop
from fusionserve.bench.paired import Launch, PairedThroughput, measure_paired
from fusionserve.bench.profile import recording, summarize
from fusionserve.bench.samples import Sample, load_dev_samples, multipart_body
from fusionserve.bench.server_metrics import batch_totals, batching
from fusionserve.bench.server_rev import server_env
from fusionserve.bench.stages import StageRow, stage_table
from fusionserve.bench.thread_cpu import (
    ThreadCpuRow,
    per_role,
    stat_cpu_s,
    thread_cpu_s,
    thread_names,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE_LABEL = "old student fp32"  # the student bundle from git history (--baseline-rev)
OLD_SERVER_LABEL = "old server fp32"  # the student, served by the code at --server-rev


@dataclass(frozen=True)
class BenchConfig:
    bundle_dir: Path
    student: str
    teacher: str | None
    checkpoint: Path | None  # torch checkpoint of the student, for the naive baseline
    datasets_root: Path
    requests: Mapping[int, int]  # concurrency → measured requests
    warmup: int = 20
    samples: int = 64  # distinct dev items, cycled
    single_items: int = 100  # ceiling single-item latency passes
    cold_starts: int = 3  # student launches timed to ready (the first served launch counts)
    server_env: Mapping[str, str] = field(default_factory=dict)  # FUSIONSERVE_* overrides
    profile_dir: Path | None = None  # py-spy profiles of each server at the top concurrency
    baseline_dir: Path | None = None  # the student bundle as committed at baseline_rev
    baseline_rev: str | None = None
    server_rev: str | None = None  # serve the student with the server code at this revision too
    server_rev_dir: Path | None = None  # where that code was extracted
    server_rev_overlay: tuple[str, ...] = ()  # files of it taken from this commit instead
    open_loop_fraction: float = 0.7  # open-loop (Poisson) rate, as a fraction of the best rate
    stages_dir: Path | None = None  # profiled extra pass: flame graphs + per-stage tables
    paired_rounds: int = 6  # new vs server_rev throughput, both up, driven in turn (0 = off)


@dataclass
class ServedRun:
    label: str
    bundle: str
    precision: str
    levels: list[LoadResult]
    ready_s: float
    peak_rss_mb: float | None
    loadavg: tuple[float, float, float]
    http_floor: LoadResult | None = None  # GET /health/live at c=1: the bare HTTP round trip
    open_loop: LoadResult | None = None  # Poisson arrivals at open_loop_fraction × max rate
    open_loop_rate: float | None = None  # the offered rate, requests/s
    stages: list[StageRow] | None = None  # per-stage CPU at the top concurrency (profiled pass)
    threads: list[ThreadCpuRow] | None = None  # exact CPU by thread role, the same pass
    concurrent_runs: int = 1  # graph runs the server lets the model have at once (its /models)
    max_batch_size: int | None = None  # items per run at most, as the server resolved it

    @property
    def max_rate(self) -> float:
        """The rate the server sustains saturated: its throughput at the top concurrency. (The
        best of all levels would be a burst on a shared machine: 70 % of it can overload.)"""
        return max(self.levels, key=lambda level: level.concurrency).throughput

    def level(self, concurrency: int) -> LoadResult:
        return next(r for r in self.levels if r.concurrency == concurrency)


@dataclass
class Variant:
    label: str
    bundle: str
    precision: str
    ceiling: CeilingResult
    served: ServedRun
    bundle_dir: Path | None = None  # where the bundle was read from
    bundle_mb: float = 0.0  # every file it ships


def bundle_mb(folder: Path) -> float:
    """Every file a bundle ships (graphs, tokenizer, manifest, self-test image), in MB."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6


@dataclass
class BenchResults:
    config: BenchConfig
    settings: dict[str, object]
    task_set: str
    variants: list[Variant]
    naive: ServedRun | None
    cold_starts_s: list[float]
    started_at: str
    duration_s: float
    paired: PairedThroughput | None = None  # new vs server_rev, paired rounds

    def variant(self, label: str) -> Variant | None:
        return next((v for v in self.variants if v.label == label), None)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), None elsewhere."""
    return stat_cpu_s(Path(f"/proc/{pid}/stat"))


def _settings(overrides: Mapping[str, str], precision: str) -> Settings:
    """The Settings the served process will build from its environment, for the ceiling."""
    values: dict[str, object] = {
        key.removeprefix("FUSIONSERVE_").lower(): value for key, value in overrides.items()
    }
    values["precision"] = precision
    return Settings(**values)  # type: ignore[arg-type]


def serve_command(bundle_dir: Path, bundle: str, precision: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "fusionserve.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--bundle-dir", str(bundle_dir),
        "--models", bundle, "--precision", precision,
    ]  # fmt: skip


def _naive_cmd(checkpoint: Path, bundle_dir: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "fusionserve.bench.naive_server", "--checkpoint", str(checkpoint),
        "--bundle", str(bundle_dir), "--port", str(port),
    ]  # fmt: skip


def _profiles(config: BenchConfig, slug: str, pid: int, profile: bool) -> contextlib.ExitStack:
    """Both py-spy recordings (all busy threads; GIL holder) when profiling this level."""
    stack = contextlib.ExitStack()
    if profile and config.profile_dir is not None:
        stack.enter_context(recording(pid, config.profile_dir / f"{slug}.raw"))
        stack.enter_context(recording(pid, config.profile_dir / f"{slug}-gil.raw", gil=True))
    return stack


def _write_summaries(config: BenchConfig, slug: str) -> None:
    if config.profile_dir is None:
        return
    for name in (slug, f"{slug}-gil"):
        raw = config.profile_dir / f"{name}.raw"
        if raw.is_file():
            (config.profile_dir / f"{name}.txt").write_text(summarize(raw))


def _drive_levels(
    label: str,
    server: ServerProcess,
    base_url: str,
    bundle: str,
    bodies: list[tuple[bytes, str]],
    config: BenchConfig,
) -> list[LoadResult]:
    runs = []
    top = max(config.requests)
    for concurrency, requests in sorted(config.requests.items()):
        slug = f"{label.replace(' ', '-')}-c{concurrency}"
        with _profiles(config, slug, server.pid, concurrency == top):
            load = asyncio.run(
                run_load(
                    f"{base_url}/predict?model={bundle}",
                    bodies,
                    concurrency,
                    requests,
                    config.warmup,
                    server_cpu=lambda: cpu_seconds(server.pid),
                    server_batches=lambda: batch_totals(base_url, bundle),
                )
            )
        if concurrency == top:
            _write_summaries(config, slug)
        runs.append(load)
    return runs


def _served_run(
    label: str,
    bundle: str,
    precision: str,
    cmd: list[str],
    port: int,
    env: Mapping[str, str],
    bodies: list[tuple[bytes, str]],
    config: BenchConfig,
    floor_path: str | None = "/health/live",
    cwd: Path | None = None,
) -> ServedRun:
    loadavg = os.getloadavg()
    base_url = f"http://127.0.0.1:{port}"
    with running_server(cmd, base_url, env, cwd=cwd or REPO_ROOT) as server:
        levels = _drive_levels(label, server, base_url, bundle, bodies, config)
        run = ServedRun(label, bundle, precision, levels, server.ready_s, None, loadavg)
        key = env.get("FUSIONSERVE_API_KEY") or os.environ.get("FUSIONSERVE_API_KEY")
        run.concurrent_runs, run.max_batch_size = batching(base_url, bundle, key)
        if floor_path is not None:
            floor_requests = max(config.requests.values())
            run.http_floor = asyncio.run(run_load(base_url + floor_path, [], 1, floor_requests, 20))
            run.open_loop_rate = config.open_loop_fraction * run.max_rate
            run.open_loop = _open_loop(server, base_url, bundle, bodies, run.open_loop_rate, config)
            if config.stages_dir is not None and label in STAGE_LABELS:
                _stage_pass(run, server, base_url, bodies, config)
        run.peak_rss_mb = server.peak_rss_mb()
        return run


STAGE_LABELS = ("student fp32", OLD_SERVER_LABEL)


def _open_loop(
    server: ServerProcess,
    base_url: str,
    bundle: str,
    bodies: list[tuple[bytes, str]],
    rate: float,
    config: BenchConfig,
) -> LoadResult:
    """Poisson arrivals at `rate` requests/s."""
    return asyncio.run(
        run_open_loop(
            f"{base_url}/predict?model={bundle}",
            bodies,
            rate,
            max(config.requests.values()),
            server_cpu=lambda: cpu_seconds(server.pid),
            server_batches=lambda: batch_totals(base_url, bundle),
        )
    )


def _stage_pass(
    run: ServedRun,
    server: ServerProcess,
    base_url: str,
    bodies: list[tuple[bytes, str]],
    config: BenchConfig,
) -> None:
    """One more pass at the top concurrency under py-spy (after the measured ones, which it
    would perturb): the flame graph, where each request's CPU went by stage, and each thread
    role's CPU as the kernel counted it (`fusionserve.bench.thread_cpu`)."""
    assert config.stages_dir is not None
    top = max(config.requests)
    slug = f"{run.label.replace(' ', '-')}-c{top}"
    raw = config.stages_dir / f"{slug}.raw"
    names = thread_names(server.pid)
    with recording(server.pid, raw):
        before = thread_cpu_s(server.pid)
        load = asyncio.run(
            run_load(
                f"{base_url}/predict?model={run.bundle}",
                bodies,
                top,
                config.requests[top],
                server_cpu=lambda: cpu_seconds(server.pid),
            )
        )
        after = thread_cpu_s(server.pid)
    if names:
        run.threads = per_role(before, after, names, load.requests)
    if not raw.is_file():
        return  # py-spy missing or not permitted
    title = f"{run.label}, c={top}, {load.requests} requests"
    render(raw, config.stages_dir / f"{slug}.svg", title)
    run.stages = stage_table(raw, load.server_cpu_ms_per_request)


def _variant(
    label: str,
    bundle: str,
    precision: str,
    bundle_dir: Path,
    samples: list[Sample],
    bodies: list[tuple[bytes, str]],
    config: BenchConfig,
) -> Variant:
    settings = _settings(config.server_env, precision)
    items = max(config.requests.values())
    ceiling = measure_ceiling(bundle_dir / bundle, settings, samples, items, config.single_items)
    launch = _launch(config, bundle_dir, bundle, precision)
    served = _served_run(
        label, bundle, precision, list(launch.cmd), launch.port, launch.env, bodies, config
    )
    size = bundle_mb(bundle_dir / bundle)
    return Variant(label, bundle, precision, ceiling, served, bundle_dir, size)


def _launch(
    config: BenchConfig, bundle_dir: Path, bundle: str, precision: str, code_dir: Path | None = None
) -> Launch:
    """A server for one bundle at one precision on a free port: this commit's, or the code in
    `code_dir` (the server at server_rev, run from its own folder)."""
    port = free_port()
    env = {**config.server_env, "FUSIONSERVE_PRECISION": precision}
    if code_dir is None:
        return Launch(serve_command(bundle_dir, bundle, precision, port), env, REPO_ROOT, port)
    cmd = serve_command(bundle_dir.resolve(), bundle, precision, port)
    return Launch(cmd, {**env, **server_env(code_dir)}, code_dir, port)


def _new_launch(config: BenchConfig) -> Launch:
    """This commit's server for the student fp32 bundle."""
    return _launch(config, config.bundle_dir, config.student, "fp32")


def _old_launch(config: BenchConfig) -> Launch:
    """The server code at server_rev for the same bundle, from its own folder."""
    assert config.server_rev_dir is not None
    return _launch(config, config.bundle_dir, config.student, "fp32", config.server_rev_dir)


def _old_server(student: Variant, bodies: list[tuple[bytes, str]], config: BenchConfig) -> Variant:
    """The student fp32 bundle served by the code at server_rev; the in-process pipeline is
    the same bundle's, so the ceiling is the one measured for the new server."""
    launch = _old_launch(config)
    served = _served_run(
        OLD_SERVER_LABEL,
        config.student,
        "fp32",
        list(launch.cmd),
        launch.port,
        launch.env,
        bodies,
        config,
        cwd=launch.cwd,
    )
    return Variant(
        OLD_SERVER_LABEL,
        config.student,
        "fp32",
        student.ceiling,
        served,
        student.bundle_dir,
        student.bundle_mb,
    )


def _cold_starts(config: BenchConfig, first_s: float) -> list[float]:
    times = [first_s]
    for _ in range(config.cold_starts - 1):
        port = free_port()
        cmd = serve_command(config.bundle_dir, config.student, "fp32", port)
        server = start_server(cmd, f"http://127.0.0.1:{port}", config.server_env, cwd=REPO_ROOT)
        times.append(server.ready_s)
        server.stop()
        server.log_path.unlink(missing_ok=True)
    return times


def run_bench(config: BenchConfig, log: bool = True) -> BenchResults:
    """The whole benchmark; prints progress lines to stderr when `log`."""

    def say(message: str) -> None:
        if log:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    student_dir = config.bundle_dir / config.student
    manifest = Manifest.load(student_dir)
    samples = load_dev_samples(manifest.task_set, config.datasets_root, config.samples)
    bodies = [multipart_body(s) for s in samples]
    say(f"{len(samples)} {manifest.task_set} dev samples; requests {dict(config.requests)}")

    here = config.bundle_dir
    plan = [("student fp32", config.student, "fp32", here)]
    if INT8_MODEL_FILE in manifest.files:
        plan.append(("student int8", config.student, "int8", here))
    if config.baseline_dir is not None:
        plan.append((BASELINE_LABEL, config.student, "fp32", config.baseline_dir))
    if config.teacher:
        plan.append(("teacher fp32", config.teacher, "fp32", here))
    variants = []
    for label, bundle, precision, bundle_dir in plan:
        say(f"{label}: ceiling, then served")
        variants.append(_variant(label, bundle, precision, bundle_dir, samples, bodies, config))
        if label == "student fp32" and config.server_rev_dir is not None:
            say(f"{OLD_SERVER_LABEL}: the server code at {config.server_rev}, same bundle")
            variants.append(_old_server(variants[0], bodies, config))

    paired = None
    if config.server_rev_dir is not None and config.paired_rounds > 0:
        top = max(config.requests)
        say(
            f"paired throughput and CPU: {config.paired_rounds} rounds, new and old in turn "
            f"(the in-process pipeline between them), c={top}"
        )
        pipeline = pipeline_pass(
            student_dir,
            _settings(config.server_env, "fp32"),
            samples,
            config.requests[top] // 2,
        )
        paired = measure_paired(
            _new_launch(config),
            _old_launch(config),
            f"/predict?model={config.student}",
            bodies,
            top,
            config.requests[top] // 2,
            config.paired_rounds,
            config.warmup,
            server_cpu=cpu_seconds,
            pipeline=pipeline,
        )

    naive = None
    if config.checkpoint is not None:
        say("naive PyTorch baseline")
        port = free_port()
        cmd = _naive_cmd(config.checkpoint, student_dir, port)
        naive = _served_run(
            "naive torch", config.student, "fp32", cmd, port, {}, bodies, config, None
        )

    say("cold starts")
    cold = _cold_starts(config, variants[0].served.ready_s)
    return BenchResults(
        config=config,
        settings=_settings(config.server_env, "fp32").model_dump(mode="json"),
        task_set=manifest.task_set,
        variants=variants,
        naive=naive,
        cold_starts_s=cold,
        started_at=started_at,
        duration_s=time.perf_counter() - start,
        paired=paired,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
