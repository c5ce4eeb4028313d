"""The soak's pass/fail bounds, checked on its windows.

Reference and end are the same shape: the samples in the second half of the warm-up (the first
window: allocator pools, onnxruntime arenas and caches fill during the first requests) and the
samples in the second half of the last window. At rest: the server with no connection open,
just before the soak and after its last answer. With those:

- RSS: median(end) ≤ median(reference) × 1.05 (growth ≤ 5 % after warm-up);
- fds flat: under load, median(end) ≤ median(reference) + FD_SLACK (connections come and go
  with latency, so medians, not peaks); at rest, after ≤ before + FD_REST_SLACK (every
  connection is closed then: what is left over is a leak);
- threads flat: max(end) ≤ max(reference) + THREAD_SLACK, and at rest after ≤ before +
  THREAD_SLACK (pool threads start lazily; a leak grows past any constant);
- 0 unexpected 5xx (what clients saw, and what the server counted — disconnects included);
- 0 other unexpected statuses or transport errors (a disconnect's answer is not read).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from fusionserve.bench.soak_proc import ProcessSample
from fusionserve.bench.soak_windows import WindowSummary

RSS_GROWTH_MAX_PCT = 5.0
FD_SLACK = 16
FD_REST_SLACK = 4
THREAD_SLACK = 2


@dataclass(frozen=True)
class Bound:
    name: str
    rule: str
    measured: str
    ok: bool


def _second_half(samples: Sequence[ProcessSample]) -> list[ProcessSample]:
    return list(samples[len(samples) // 2 :])


def check_bounds(
    windows: Sequence[WindowSummary], rest_before: ProcessSample, rest_after: ProcessSample
) -> list[Bound]:
    """Every bound, passed or not; fewer than two windows (warm-up + one) fails them all."""
    if len(windows) < 2:
        return [Bound("windows", "warm-up window + at least one more", str(len(windows)), False)]
    ref, end = _second_half(windows[0].samples), _second_half(windows[-1].samples)
    rss_ref = statistics.median(s.rss_mb for s in ref)
    rss_end = statistics.median(s.rss_mb for s in end)
    growth = 100.0 * (rss_end - rss_ref) / rss_ref
    fds_ref = statistics.median(s.fds for s in ref)
    fds_end = statistics.median(s.fds for s in end)
    thr_ref, thr_end = max(s.threads for s in ref), max(s.threads for s in end)
    before, after = rest_before, rest_after
    client_5xx = sum(w.client_5xx for w in windows)
    server_5xx = sum(w.server_5xx for w in windows)
    unexpected = sum(sum(w.unexpected.values()) for w in windows)
    return [
        Bound(
            "RSS growth after warm-up",
            f"≤ {RSS_GROWTH_MAX_PCT:g} %",
            f"{rss_ref:.1f} → {rss_end:.1f} MiB ({growth:+.2f} %)",
            growth <= RSS_GROWTH_MAX_PCT,
        ),
        Bound("open fds flat under load", f"end median ≤ warm-up median + {FD_SLACK}",
              f"{fds_ref:g} → {fds_end:g}", fds_end <= fds_ref + FD_SLACK),
        Bound("open fds at rest", f"after ≤ before + {FD_REST_SLACK}",
              f"{before.fds} → {after.fds}", after.fds <= before.fds + FD_REST_SLACK),
        Bound("threads flat", f"end max ≤ warm-up max + {THREAD_SLACK}; at rest the same",
              f"{thr_ref} → {thr_end}; at rest {before.threads} → {after.threads}",
              thr_end <= thr_ref + THREAD_SLACK and after.threads <= before.threads + THREAD_SLACK),
        Bound("unexpected 5xx", "0 (client and server side)",
              f"client {client_5xx}, server {server_5xx}", client_5xx == 0 and server_5xx == 0),
        Bound("unexpected statuses", "0 (transport errors included)", str(unexpected),
              unexpected == 0),
    ]  # fmt: skip
