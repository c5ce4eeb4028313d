"""The soak's time series: what happened in each window (a minute by default) — answers by
group and status as the client saw them, the server's own status counts, p99 of valid
requests, and the server process's memory, fds and threads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fusionserve.bench.soak_proc import ProcessSample

TRANSPORT_ERROR = 0  # status recorded when no HTTP answer came back


@dataclass
class WindowTally:
    """Collected while the window runs."""

    valid_ms: list[float] = field(default_factory=list)  # valid requests answered 200
    statuses: Counter[str] = field(default_factory=Counter)  # "<group> <status>"
    unexpected: Counter[str] = field(default_factory=Counter)  # "<kind>: <status>"
    client_5xx: int = 0
    server: Counter[int] = field(default_factory=Counter)  # status → answers (GET /metrics)
    samples: list[ProcessSample] = field(default_factory=list)

    def answered(self, kind: str, group: str, status: int, expected: frozenset[int]) -> None:
        self.statuses[f"{group} {status}"] += 1
        if status not in expected:
            self.unexpected[f"{kind}: {status}"] += 1
            self.client_5xx += status >= 500

    def sent_and_closed(self) -> None:
        self.statuses["disconnect sent"] += 1

    def progress(self, index: int) -> str:
        """One line while the soak runs (the report comes at the end)."""
        last = self.samples[-1] if self.samples else None
        memory = (
            f"RSS {last.rss_mb:.0f} MiB, fds {last.fds}, threads {last.threads}" if last else ""
        )
        p99 = _percentile(self.valid_ms, 99)
        return (
            f"window {index + 1}: {sum(self.statuses.values())} requests, p99 "
            f"{'n/a' if p99 is None else f'{p99:.0f} ms'}, {memory}, unexpected "
            f"{sum(self.unexpected.values())}, server 5xx "
            f"{sum(v for k, v in self.server.items() if k >= 500)}"
        )


@dataclass(frozen=True)
class WindowSummary:
    """One window as reported (JSON-ready)."""

    index: int
    requests: int
    valid_ok: int
    p50_ms: float | None
    p99_ms: float | None
    rss_mb: float  # median of the window's samples
    rss_max_mb: float
    fds_median: float
    fds_max: int
    threads_max: int
    statuses: dict[str, int]
    server_statuses: dict[str, int]
    unexpected: dict[str, int]
    client_5xx: int
    server_5xx: int
    samples: list[ProcessSample]


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def summarize(index: int, tally: WindowTally) -> WindowSummary:
    if not tally.samples:
        raise ValueError(f"window {index} has no process samples")
    rss = [s.rss_mb for s in tally.samples]
    return WindowSummary(
        index=index,
        requests=sum(tally.statuses.values()),
        valid_ok=len(tally.valid_ms),
        p50_ms=_percentile(tally.valid_ms, 50),
        p99_ms=_percentile(tally.valid_ms, 99),
        rss_mb=float(np.median(rss)),
        rss_max_mb=max(rss),
        fds_median=float(np.median([s.fds for s in tally.samples])),
        fds_max=max(s.fds for s in tally.samples),
        threads_max=max(s.threads for s in tally.samples),
        statuses=dict(sorted(tally.statuses.items())),
        server_statuses={str(k): v for k, v in sorted(tally.server.items())},
        unexpected=dict(sorted(tally.unexpected.items())),
        client_5xx=tally.client_5xx,
        server_5xx=sum(v for k, v in tally.server.items() if k >= 500),
        samples=list(tally.samples),
    )
