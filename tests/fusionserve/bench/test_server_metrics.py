"""The mean formed batch from two readings of the server's batch-size histogram, and the
concurrent runs a real server reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.server_metrics import batching, mean_batch
from fusionserve.bench.suite import serve_command


def test_mean_batch_is_items_per_run_between_readings() -> None:
    assert mean_batch((10.0, 5.0), (74.0, 7.0)) == 32.0
    assert mean_batch((10.0, 5.0), (10.0, 5.0)) is None  # nothing ran
    assert mean_batch(None, (1.0, 1.0)) is None and mean_batch((1.0, 1.0), None) is None


@pytest.mark.slow
def test_batching_comes_from_the_servers_models_endpoint(bench_bundle_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = serve_command(bench_bundle_dir, "medpix-student", "fp32", port)
    with running_server(cmd, base, {"FUSIONSERVE_CONCURRENT_RUNS": "3"}):
        assert batching(base, "medpix-student") == (3, 4)  # max batch: auto on a CPU
        assert batching(base, "no-such-model") == (1, None)  # 404: not said
    assert batching(base, "medpix-student") == (1, None)  # nobody listening


@pytest.mark.slow
def test_batching_sends_the_api_key(bench_bundle_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = serve_command(bench_bundle_dir, "medpix-student", "fp32", port)
    env = {"FUSIONSERVE_API_KEY": "k" * 24, "FUSIONSERVE_CONCURRENT_RUNS": "2"}
    with running_server(cmd, base, env):
        assert batching(base, "medpix-student") == (1, None)  # refused without the key
        assert batching(base, "medpix-student", "k" * 24) == (2, 4)
