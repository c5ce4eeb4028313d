"""The mean formed batch from two readings of the server's batch-size histogram."""

from __future__ import annotations

from fusionserve.bench.server_metrics import mean_batch


def test_mean_batch_is_items_per_run_between_readings() -> None:
    assert mean_batch((10.0, 5.0), (74.0, 7.0)) == 32.0
    assert mean_batch((10.0, 5.0), (10.0, 5.0)) is None  # nothing ran
    assert mean_batch(None, (1.0, 1.0)) is None and mean_batch((1.0, 1.0), None) is None
