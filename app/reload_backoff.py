"""Pacing a model's self-reloads: the first of a streak at once, then base, 2 × base, 4 × base …
up to a cap, so a model that keeps failing (a bundle gone bad on disk, a device that faults
every batch) costs a load per cap interval, not a load per K failed runs.

A reload attempt that fails, or a reloaded version that fails K runs in a row, continues the
streak. A version that served for longer than the cap before failing starts a new one: at the
cap a broken version fails within moments, so a streak ends only when a version really held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_DOUBLINGS = 30  # 2**30 × any base is past any cap; keeps the float finite


@dataclass
class ReloadBackoff:
    base_s: float  # RELOAD_BACKOFF_S
    max_s: float  # RELOAD_BACKOFF_MAX_S
    clock: Callable[[], float] = time.monotonic
    _streak: dict[str, int] = field(default_factory=dict)
    _ready_at: dict[str, float] = field(default_factory=dict)

    def ready(self, name: str) -> None:
        """A version of `name` became ready (any load)."""
        self._ready_at[name] = self.clock()

    def next_delay(self, name: str) -> float:
        """Seconds to wait before the next self-reload of `name`; counts it in the streak."""
        ready_at = self._ready_at.pop(name, None)
        if ready_at is not None and self.clock() - ready_at > self.max_s:
            self._streak[name] = 0
        n = self._streak.get(name, 0)
        self._streak[name] = n + 1
        if n == 0:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(n - 1, MAX_DOUBLINGS))
