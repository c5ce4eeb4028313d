"""The mean formed batch from two readings of the server's batch-size histogram, and the
concurrent runs a real server reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.server_metrics import concurrent_runs, mean_batch
from fusionserve.bench.suite import serve_command


def test_mean_batch_is_items_per_run_between_readings() -> None:
    assert mean_batch((10.0, 5.0), (74.0, 7.0)) == 32.0
    assert mean_batch((10.0, 5.0), (10.0, 5.0)) is None  # nothing ran
    assert mean_batch(None, (1.0, 1.0)) is None and mean_batch((1.0, 1.0), None) is None


@pytest.mark.slow
def test_concurrent_runs_come_from_the_servers_models_endpoint(bench_bundle_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = serve_command(bench_bundle_dir, "medpix-student", "fp32", port)
    with running_server(cmd, base, {"FUSIONSERVE_CONCURRENT_RUNS": "3"}):
        assert concurrent_runs(base, "medpix-student") == 3
        assert concurrent_runs(base, "no-such-model") == 1  # 404: not said
    assert concurrent_runs(base, "medpix-student") == 1  # nobody listening
