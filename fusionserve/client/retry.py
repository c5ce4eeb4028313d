"""When and how long to wait before retrying: 429 (queue full) and 503 (loading, draining) are
the server saying "not now", and connection failures are what a restarting replica looks like.
A prediction has no side effects, so retrying it is always safe."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` extra attempts; exponential backoff with jitter, or the server's
    Retry-After when it sends one (capped at `max_wait_s` so a bad header cannot hang a job)."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("retry settings must not be negative")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            return min(retry_after, self.max_wait_s)
        backoff = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return backoff * random.uniform(0.5, 1.0)  # jitter spreads a herd of clients apart


NO_RETRY = RetryPolicy(max_retries=0)
