"""The M/D/1 floor against queueing theory's closed forms, and the report's use of it."""

from __future__ import annotations

import numpy as np
import pytest

from fusionserve.bench.loadgen import LoadResult
from fusionserve.bench.queue_floor import fifo_sojourn_ms
from fusionserve.bench.server_compare import open_tail_floor
from fusionserve.bench.suite import ServedRun


@pytest.mark.parametrize("load", [0.3, 0.7])
def test_mean_wait_matches_pollaczek_khinchine(load: float) -> None:
    service = 8.0
    grid = tuple((i + 0.5) / 2000 for i in range(2000))  # the mean as the quantiles' average
    mean_sojourn = float(np.mean(fifo_sojourn_ms(load, service, grid)))
    assert mean_sojourn == pytest.approx(service + load * service / (2 * (1 - load)), rel=0.05)


def test_tail_grows_with_load_and_scales_with_service() -> None:
    light = fifo_sojourn_ms(0.1, 8.0, (0.99,))[0]
    heavy = fifo_sojourn_ms(0.7, 8.0, (0.99,))[0]
    assert 8.0 <= light < 2 * 8.0 < heavy
    # the same queue in other units: every percentile scales with the service time
    assert fifo_sojourn_ms(0.7, 4.0, (0.99,))[0] == pytest.approx(heavy / 2, rel=1e-9)
    # M/D/1 at 70 %: the 99th percentile wait is some 6 service times (exponential tail)
    assert 5.5 * 8.0 < heavy < 8.5 * 8.0


def test_load_outside_the_open_interval_is_refused() -> None:
    for load in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="load"):
            fifo_sojourn_ms(load, 8.0, (0.99,))


def _level(concurrency: int, latency_ms: float, throughput: float) -> LoadResult:
    count = 100
    return LoadResult(concurrency, count, count / throughput, (latency_ms,) * count)


def test_open_tail_floor_reads_the_runs_max_rate_and_c1_p50() -> None:
    run = ServedRun(
        "student fp32",
        "b",
        "fp32",
        [_level(1, 12.0, 80.0), _level(32, 250.0, 125.0)],
        1.0,
        None,
        (0.0, 0.0, 0.0),
    )
    assert open_tail_floor(run, 0.7) is None  # no open-loop run: nothing to set a floor under
    run.open_loop = _level(1, 30.0, 87.5)
    (p99,) = fifo_sojourn_ms(0.7, 1000.0 / 125.0, (0.99,))
    assert open_tail_floor(run, 0.7) == pytest.approx(p99 / 12.0)
    assert open_tail_floor(run, 0.7) > 3.0  # 2 cores at 125/s: the 3× is out of reach
