"""The open-loop tail an ideal server could reach at the same load: the latency percentiles of
a FIFO queue with Poisson arrivals and `servers` identical servers, each serving one request in
exactly `servers` / max rate (M/D/c; M/D/1 for one), by the Kiefer-Wolfowitz recursion (Lindley's
for one server) over a fixed draw.

Why: the open-loop target compares p99 at a fraction of the measured max rate with the c = 1
p50. Queueing alone sets a floor under that ratio: a server whose throughput never exceeds its
max rate cannot answer faster than the one-at-a-time queue (batching that does not raise
throughput only holds requests back to the batch's end). A server that runs c graph runs at
once (`FUSIONSERVE_CONCURRENT_RUNS`) is also modelled as c servers each taking c / max rate
(higher still): a bound only where each run takes that long, which a lone request's latency
shows (not a floor for any server). When the one-at-a-time floor is above the goal, no server
with this max rate meets the goal (only a higher max rate lowers the floor); the report prints
both beside the measurement.
"""

from __future__ import annotations

import numpy as np

FLOOR_ARRIVALS = 200_000
FLOOR_SEED = 26


def fifo_sojourn_ms(
    load: float,
    service_ms: float,
    quantiles: tuple[float, ...],
    arrivals: int = FLOOR_ARRIVALS,
    servers: int = 1,
) -> tuple[float, ...]:
    """Quantiles (0-1) of arrival-to-answer time, ms, at utilisation `load` (< 1) of `servers`
    servers that each take `service_ms` per request."""
    if not 0 < load < 1:
        raise ValueError(f"load must be in (0, 1), not {load}")
    if servers < 1:
        raise ValueError(f"servers must be at least 1, not {servers}")
    gaps = np.random.default_rng(FLOOR_SEED).exponential(service_ms / (load * servers), arrivals)
    waits = np.empty(arrivals)
    work = [0.0] * servers  # each server's remaining work, ascending: the next arrival's wait
    for index, gap in enumerate(gaps.tolist()):
        waits[index] = work[0]
        work[0] += service_ms
        work.sort()
        work = [max(0.0, w - gap) for w in work]
    return tuple(float(v) for v in np.quantile(waits + service_ms, quantiles))
