"""Test-only faults in a model's runs, to show what each looks like from outside.

`FUSIONSERVE_FAULT_INJECTION=<model>=<kind>[:<batches>],...` wraps that model's batch function;
the settings refuse the variable unless `FUSIONSERVE_TEST_ONLY_ALLOW_FAULTS=1` is set too, so a
stray value in production stops the server instead of injecting anything. Kinds:

- `raise`: every batch raises (a broken session);
- `raise_1_in_10`: every 10th batch raises (a flaky driver);
- `hang`: the batch blocks until `release()` (a stuck GPU), then runs;
- `slow`: the batch sleeps 2 s, then runs;
- `nan`: the batch runs and its floating outputs are NaN.

`:<batches>` limits the fault to the model's first N batches, so a test can watch recovery. The
count is kept per model across reloads: a reload does not restart it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

KINDS = ("raise", "raise_1_in_10", "hang", "slow", "nan")
SLOW_S = 2.0
HANG_LIMIT_S = 3600.0  # a forgotten release() still ends, an hour later

RunBatch = Callable[[Sequence[object]], Sequence[dict[str, np.ndarray]]]


class InjectedFault(RuntimeError):
    """What `raise` and `raise_1_in_10` raise in place of onnxruntime's own error."""


@dataclass
class Fault:
    """One model's fault and how many of its batches have met it."""

    kind: str
    batches: int | None = None  # None = every batch
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def strikes(self) -> bool:
        """Count a batch; whether the fault applies to it."""
        with self.lock:
            self.seen += 1
            n = self.seen
        if self.batches is not None and n > self.batches:
            return False
        return self.kind != "raise_1_in_10" or n % 10 == 0


def parse(specs: Sequence[str]) -> dict[str, Fault]:
    """`["medpix-student=hang:1"]` → {"medpix-student": Fault("hang", 1)}; ValueError if bad."""
    faults = {}
    for spec in specs:
        model, sep, rest = spec.partition("=")
        kind, _, count = rest.partition(":")
        if not sep or not model or kind not in KINDS:
            raise ValueError(f"fault {spec!r}: expected <model>=<kind>[:<batches>]; kinds {KINDS}")
        faults[model.strip()] = Fault(kind, int(count) if count else None)
    return faults


class FaultInjector:
    """Wraps the configured models' batch functions; `release()` ends every hang."""

    def __init__(self, faults: dict[str, Fault]) -> None:
        self.faults = faults
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def wrap(self, model: str, run: RunBatch) -> RunBatch:
        fault = self.faults.get(model)
        if fault is None:
            return run

        def faulty(items: Sequence[object]) -> Sequence[dict[str, np.ndarray]]:
            if not fault.strikes():
                return run(items)
            if fault.kind in ("raise", "raise_1_in_10"):
                raise InjectedFault(f"injected fault: {fault.kind}")
            if fault.kind == "hang":
                self._release.wait(HANG_LIMIT_S)
            elif fault.kind == "slow":
                time.sleep(SLOW_S)
            outputs = run(items)
            if fault.kind == "nan":
                return [{k: _nan_like(v) for k, v in row.items()} for row in outputs]
            return outputs

        return faulty


def _nan_like(value: np.ndarray) -> np.ndarray:
    if np.issubdtype(value.dtype, np.floating):
        return np.full_like(value, np.nan)
    return value


def injector(specs: Sequence[str]) -> FaultInjector | None:
    """The injector for FAULT_INJECTION (already refused by the settings without the test
    flag); None when no fault is configured, the production case."""
    return FaultInjector(parse(specs)) if specs else None
