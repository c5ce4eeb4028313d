"""The M/D/1 and M/D/c floors against queueing theory, and the report's use of them."""

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


def test_one_fast_server_beats_two_half_as_fast_ones() -> None:
    """M/D/c at the same capacity: pooling is best, so c runs at once, each c times slower,
    have the higher floor; with nearly no load every request takes its own service time."""
    one = fifo_sojourn_ms(0.7, 4.0, (0.5, 0.99))
    two = fifo_sojourn_ms(0.7, 8.0, (0.5, 0.99), servers=2)
    assert one[0] < two[0] and one[1] < two[1]
    assert fifo_sojourn_ms(0.01, 8.0, (0.5,), servers=2)[0] == pytest.approx(8.0)
    with pytest.raises(ValueError, match="servers"):
        fifo_sojourn_ms(0.7, 8.0, (0.99,), servers=0)


def test_mean_wait_of_two_servers_matches_the_m_d_2_approximation() -> None:
    """Cosmetatos: the M/D/c mean wait is about half the M/M/c one (Erlang C), within a few %
    at 70 % load for c = 2."""
    load, service = 0.7, 8.0
    erlang_c = 2 * load**2 / (1 + load)  # P(wait) for M/M/2
    mm2_wait = erlang_c * service / (2 * (1 - load))
    grid = tuple((i + 0.5) / 2000 for i in range(2000))
    mean_wait = float(np.mean(fifo_sojourn_ms(load, service, grid, servers=2))) - service
    assert mean_wait == pytest.approx(mm2_wait / 2, rel=0.12)


def test_the_served_floor_uses_the_runs_concurrent_runs() -> None:
    run = ServedRun(
        "student fp32", "b", "fp32", [_level(1, 9.0, 110.0), _level(32, 110.0, 280.0)],
        1.0, None, (0.0, 0.0, 0.0), open_loop=_level(1, 30.0, 196.0), concurrent_runs=2,
    )  # fmt: skip
    (p99,) = fifo_sojourn_ms(0.7, 2000.0 / 280.0, (0.99,), servers=2)
    assert open_tail_floor(run, 0.7, 2) == pytest.approx(p99 / 9.0)
    one_at_a_time = open_tail_floor(run, 0.7)
    assert one_at_a_time is not None and open_tail_floor(run, 0.7, 2) > one_at_a_time  # type: ignore[operator]
    assert open_tail_floor(run, 0.7, 2) > 3.0  # type: ignore[operator]  # the 3x goal: out of reach
