"""Per-item phase timings (seconds), filled as an item moves through the serving path."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class PhaseTimings:
    """queue: waiting in the batcher; preprocess: waiting for + running decode/tokenize;
    inference: the graph run of the item's batch; total: from route entry to response."""

    started: float = field(default_factory=time.perf_counter)
    queue: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    total: float = 0.0
    batch_size: int = 0

    def finish(self) -> PhaseTimings:
        self.total = time.perf_counter() - self.started
        return self

    def as_ms(self) -> dict[str, float]:
        return {
            "queue": round(self.queue * 1000, 3),
            "preprocess": round(self.preprocess * 1000, 3),
            "inference": round(self.inference * 1000, 3),
            "total": round(self.total * 1000, 3),
        }
