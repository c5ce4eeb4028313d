"""The service's one lifecycle state, read by readiness, the drain gate and the registry.

loading → ready | failed (every bundle tried) → draining (SIGTERM: not ready, still serving)
→ stopping (the app's shutdown began: new work is refused). Transitions only move forward, so
a load that finishes after SIGTERM cannot make a draining server ready again; only ready and
failed swap places, as later loads fix or break models (`settle`). Per-model states
stay per model (`app.served_model.ModelState`).
"""

from __future__ import annotations

from enum import StrEnum


class ServiceState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"  # loading finished and some configured bundle is not serving
    DRAINING = "draining"
    STOPPING = "stopping"


_ORDER = {
    ServiceState.LOADING: 0,
    ServiceState.READY: 1,
    ServiceState.FAILED: 1,
    ServiceState.DRAINING: 2,
    ServiceState.STOPPING: 3,
}


class Lifecycle:
    """Owns the service state; every change goes through `_move`, which never goes back.

    `drain` runs inside a signal handler: transitions only assign, they never log or block."""

    def __init__(self) -> None:
        self.state = ServiceState.LOADING

    @property
    def shutting_down(self) -> bool:
        """Draining or stopping: readiness is 503 and no further bundle is loaded."""
        return _ORDER[self.state] >= _ORDER[ServiceState.DRAINING]

    @property
    def stopping(self) -> bool:
        """The app's shutdown began: new requests are answered 503 `draining`."""
        return self.state is ServiceState.STOPPING

    def loaded(self, all_ready: bool) -> None:
        self._move(ServiceState.READY if all_ready else ServiceState.FAILED)

    def settle(self, all_ready: bool) -> None:
        """After start-up, a load or unload (app.model_swap) moves between ready and failed;
        loading, draining and stopping are left alone."""
        if self.state in (ServiceState.READY, ServiceState.FAILED):
            self.state = ServiceState.READY if all_ready else ServiceState.FAILED

    def drain(self) -> None:
        self._move(ServiceState.DRAINING)

    def stop(self) -> None:
        self._move(ServiceState.STOPPING)

    def _move(self, to: ServiceState) -> None:
        if _ORDER[to] > _ORDER[self.state]:
            self.state = to
