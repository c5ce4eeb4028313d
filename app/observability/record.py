"""One answered HTTP request as metrics and the access log see it: no body, text or image."""

from __future__ import annotations

from dataclasses import dataclass

from app.timing import PhaseTimings

NOT_TRAFFIC_PATHS = ("/metrics", "/health/", "/v2/health/")
UNMATCHED_ROUTE = "unmatched"


def is_traffic(path: str) -> bool:
    """Probes and scrapes are not traffic: they must not move request metrics or rates."""
    return not any(path == p or (p.endswith("/") and path.startswith(p)) for p in NOT_TRAFFIC_PATHS)


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    method: str
    route: str  # the route template (e.g. /models/{name}), never the raw path
    status: int
    duration_s: float
    model: str
    error_code: str  # as app.errors.answer_error recorded it; '' for none
    traffic: bool
    timings: PhaseTimings | None
    bytes_in: int
    bytes_out: int
