"""The open-loop tail an ideal server could reach at the same load: the latency percentiles of
a FIFO queue with Poisson arrivals that serves one request at a time in exactly 1 / max rate
(M/D/1), by the Lindley recursion over a fixed draw.

Why: the open-loop target compares p99 at a fraction of the measured max rate with the c = 1
p50. Queueing alone sets a floor under that ratio: a server whose throughput never exceeds its
max rate cannot answer faster than this queue (batching that does not raise throughput only
holds requests back to the batch's end). When the floor is above the goal, no server with this
max rate meets the goal (only a higher max rate lowers the floor); the report prints it beside
the measurement.
"""

from __future__ import annotations

import numpy as np

FLOOR_ARRIVALS = 200_000
FLOOR_SEED = 26


def fifo_sojourn_ms(
    load: float, service_ms: float, quantiles: tuple[float, ...], arrivals: int = FLOOR_ARRIVALS
) -> tuple[float, ...]:
    """Quantiles (0-1) of arrival-to-answer time, ms, at utilisation `load` (< 1)."""
    if not 0 < load < 1:
        raise ValueError(f"load must be in (0, 1), not {load}")
    gaps = np.random.default_rng(FLOOR_SEED).exponential(service_ms / load, arrivals)
    waits = np.empty(arrivals)
    wait = 0.0
    for index, gap in enumerate(gaps.tolist()):  # Lindley: W' = max(0, W + S - gap)
        waits[index] = wait
        wait = max(0.0, wait + service_ms - gap)
    return tuple(float(v) for v in np.quantile(waits + service_ms, quantiles))
