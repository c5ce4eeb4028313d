"""The load generator against a real `fusionserve serve` process: counts, failures, phases."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.loadgen import run_load
from fusionserve.bench.samples import load_dev_samples, multipart_body
from fusionserve.bench.server_metrics import batch_totals


@pytest.mark.slow
def test_load_generator_counts_successes_and_failures(
    bench_bundle_dir: Path, medpix_root: Path
) -> None:
    samples = load_dev_samples("medpix", medpix_root.parent, limit=3)
    assert [s.content_type for s in samples] == ["image/png"] * 3 and all(s.text for s in samples)
    bodies = [multipart_body(s) for s in samples]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "fusionserve.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--bundle-dir", str(bench_bundle_dir),
        "--models", "medpix-student", "--log-level", "warning",
    ]  # fmt: skip
    with running_server(cmd, base, {"FUSIONSERVE_INTRA_OP_THREADS": "1"}) as server:
        assert server.ready_s > 0 and (server.peak_rss_mb() or 1) > 0
        good = asyncio.run(
            run_load(
                f"{base}/predict?model=medpix-student",
                bodies,
                3,
                7,
                2,
                server_batches=lambda: batch_totals(base, "medpix-student"),
            )
        )
        bad = asyncio.run(run_load(f"{base}/predict?model=no-such-model", bodies, 2, 5))
    assert (good.ok, good.failures, good.requests, good.concurrency) == (7, {}, 7, 3)
    assert good.throughput > 0 and good.p50 <= good.p95 <= good.p99
    assert good.server_phases_ms["total"] > 0
    # 7 items at concurrency 3: between 1 and 3 items per graph run, from the server's histogram
    assert good.mean_batch is not None and 1.0 <= good.mean_batch <= 3.0
    assert bad.mean_batch is None  # nothing ran
    assert (bad.ok, bad.failures) == (0, {404: 5})
    assert bad.server_phases_ms == {}
    assert server.proc.returncode is not None  # stopped on exit


def test_bench_stays_torch_free() -> None:
    """Only fusionserve.bench.naive_server (its own process) may import torch."""
    code = (
        "import sys, fusionserve.bench.cli, fusionserve.bench.suite, fusionserve.bench.report, "
        "fusionserve.bench.ceiling, fusionserve.bench.loadgen;"
        "fusionserve.bench.cli.run;"
        "print('torch' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
