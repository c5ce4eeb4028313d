"""The `Server-Timing` header (W3C): where a request's time went, readable in browser devtools.

Durations are milliseconds, the same numbers as a prediction's `timing_ms`. Phases appear only
on successful predictions; other responses carry `total` alone (a phase that never ran would read
as a misleading 0).
"""

from __future__ import annotations

from app.timing import PhaseTimings

HEADER = "Server-Timing"


def _metric(name: str, seconds: float) -> str:
    return f"{name};dur={seconds * 1000:.3f}"


def server_timing(timings: PhaseTimings | None, elapsed_s: float, ok: bool) -> str:
    """Header value; `elapsed_s` (time in the app so far) stands in for an unfinished total."""
    if timings is not None and ok and timings.total > 0:
        ms = timings.as_ms()
        return ", ".join(f"{name};dur={ms[name]:.3f}" for name in ms)
    return _metric("total", elapsed_s)
