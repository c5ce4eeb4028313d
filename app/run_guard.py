"""How a model's batcher judges its runs: a deadline per run, a limit on failures in a row, and a
check that no item's outputs are NaN or infinite.

A run that hangs (a stuck GPU, a driver fault) would otherwise hold its items — and every item
queued behind it — until their request deadline, while readiness stays green. A session that
keeps raising fails every batch; after `max_failures` in a row a reload (a fresh session) is
cheaper than failing traffic forever. NaN/inf outputs are a broken graph or input, never a
probability a client may act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from app.settings import Settings

RUN_TIMEOUT_FLOOR_S = 10.0  # no automatic deadline is shorter: a cold cache or a GC pause
# warm-up runs batches of 1 and 3; a full MAX_BATCH_SIZE batch under load takes far longer
RUN_TIMEOUT_WARMUP_MULTIPLE = 50.0
SMALL_OUTPUT = 256  # values; larger outputs are checked with numpy


def no_action(reason: str) -> None:
    """The default `on_unhealthy`: a batcher used alone (tests, the bench) only reports."""


@dataclass(frozen=True)
class RunGuard:
    """The limits one batcher applies to its model's runs; `None`/0 switch a limit off."""

    timeout_s: float | None = None  # a run longer than this is a stall (items: 503 model_stalled)
    max_failures: int = 0  # failed runs in a row before on_unhealthy is called (0 = never)
    on_unhealthy: Callable[[str], None] = no_action  # the registry reloads the model

    @property
    def slow_s(self) -> float | None:
        """A run longer than half its deadline is counted as `slow`: it is close to stalling."""
        return None if self.timeout_s is None else self.timeout_s / 2


def run_timeout_s(settings: Settings, warmup_s: float) -> float:
    """RUN_TIMEOUT_S when set, else a multiple of the bundle's own warm-up time with a floor:
    a teacher on a CPU and a student on a GPU differ by orders of magnitude, so one fixed
    default would be too short for one or useless for the other."""
    if settings.run_timeout_s > 0:
        return settings.run_timeout_s
    return max(RUN_TIMEOUT_FLOOR_S, RUN_TIMEOUT_WARMUP_MULTIPLE * warmup_s)


def non_finite_outputs(outputs: Mapping[str, np.ndarray]) -> str | None:
    """The names of one item's floating outputs holding NaN or ±inf, or None if all finite."""
    bad = [name for name, value in outputs.items() if not _finite(np.asarray(value))]
    return ", ".join(sorted(bad)) or None


def _finite(value: np.ndarray) -> bool:
    """True unless a floating array holds NaN or ±inf. An item's outputs are a few values, checked
    on the event loop per item: as Python floats that is a few µs, where numpy's
    issubdtype/isfinite/all took 20 (issue 26's profile)."""
    if value.dtype.kind != "f":
        return True
    if value.size > SMALL_OUTPUT:
        return bool(np.isfinite(value).all())
    return all(map(math.isfinite, value.ravel().tolist()))
