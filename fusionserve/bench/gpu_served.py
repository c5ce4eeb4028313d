"""The served pipeline on one provider against max_batch_size: a fresh server per setting,
driven by several client processes (one asyncio client tops out before a GPU server does);
reports requests/s, latency and the mean batch the batcher formed."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.loadgen import Body, LoadResult, run_load
from fusionserve.bench.server_metrics import batch_totals, mean_batch
from fusionserve.bench.suite import REPO_ROOT, serve_command


@dataclass(frozen=True)
class ServedRow:
    bundle: str
    provider: str  # what /models says the server runs on
    max_batch_size: int
    concurrency: int
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_batch: float | None


def _client(
    url: str, bodies: Sequence[Body], concurrency: int, requests: int, warmup: int
) -> LoadResult:
    return asyncio.run(run_load(url, bodies, concurrency, requests, warmup))


def drive(
    url: str, bodies: Sequence[Body], concurrency: int, requests: int, warmup: int, clients: int
) -> tuple[float, list[float], int]:
    """(wall s, latencies ms, failures) of `requests` split over `clients` processes."""
    share = max(1, concurrency // clients)
    per_client = max(1, requests // clients)
    with ProcessPoolExecutor(clients) as pool:
        futures = [
            pool.submit(_client, url, list(bodies), share, per_client, warmup)
            for _ in range(clients)
        ]
        results = [f.result() for f in futures]
    latencies = [ms for r in results for ms in r.latencies_ms]
    failures = sum(sum(r.failures.values()) for r in results)
    return max(r.wall_s for r in results), latencies, failures


def served_provider(base_url: str, bundle: str) -> str:
    """The execution provider the server's session runs on, as GET /models/{name} reports it."""
    info = httpx.get(f"{base_url}/models/{bundle}", timeout=10).json()
    return str(info.get("provider") or "?")


def sweep(
    bundle_dir: Path,
    bundle: str,
    batch_sizes: Sequence[int],
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    clients: int,
    env: Mapping[str, str],
) -> list[ServedRow]:
    rows = []
    for size in batch_sizes:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server_env = {**env, "FUSIONSERVE_MAX_BATCH_SIZE": str(size)}
        with tempfile.TemporaryDirectory() as metrics_dir:
            if int(server_env.get("FUSIONSERVE_WORKERS", "1")) > 1:
                server_env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            cmd = serve_command(bundle_dir, bundle, "fp32", port)
            with running_server(cmd, base_url, server_env, cwd=REPO_ROOT):
                url = f"{base_url}/predict?model={bundle}"
                drive(url, bodies, concurrency, min(requests, 4 * concurrency), 0, clients)
                before = batch_totals(base_url, bundle)
                wall_s, latencies, failures = drive(url, bodies, concurrency, requests, 0, clients)
                after = batch_totals(base_url, bundle)
                provider = served_provider(base_url, bundle)
        ordered = np.asarray(latencies) if latencies else np.asarray([float("nan")])
        rows.append(
            ServedRow(
                bundle,
                provider,
                size,
                concurrency,
                len(latencies) + failures,
                failures,
                len(latencies) / wall_s if wall_s > 0 else 0.0,
                float(np.percentile(ordered, 50)),
                float(np.percentile(ordered, 99)),
                mean_batch(before, after),
            )
        )
    return rows
