"""A configured bundle as the registry tracks it: its state, and once ready what serves it.

`ServedModel` exists from discovery on (a bundle may be loading or failed); its `active` part —
the loaded bundle and the batcher feeding it — exists whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from app.batcher import DynamicBatcher
from app.contract.manifest import Manifest
from app.errors import ModelNotReady, ModelStalled
from app.loaded_bundle import LoadedBundle, Outputs
from app.preprocess import PreparedInputs


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    UNLOADED = "unloaded"  # by the repository API: not served, and not a readiness failure


@dataclass(frozen=True)
class ActiveModel:
    """A loaded bundle and the batcher that runs its batches."""

    bundle: LoadedBundle
    batcher: DynamicBatcher[PreparedInputs, Outputs]

    @property
    def name(self) -> str:
        return self.bundle.name


@dataclass
class ServedModel:
    """One configured bundle: where it is, its manifest (read at discovery, so task-set aliases
    resolve while it loads), its state, and what serves it once loaded."""

    name: str
    bundle_dir: Path
    manifest: Manifest | None = None
    state: ModelState = ModelState.LOADING
    reason: str | None = "loading"
    active: ActiveModel | None = None

    @property
    def ready(self) -> bool:
        return (
            self.state is ModelState.READY
            and self.active is not None
            and self.active.batcher.available
        )

    @property
    def status_reason(self) -> str | None:
        if self.state is ModelState.READY and not self.ready:
            batcher = self.active.batcher if self.active is not None else None
            if batcher is not None and batcher.stalled is not None:
                return f"stalled: {batcher.stalled}"
            failure = batcher.failure if batcher is not None else None
            return failure or "batcher is not running"
        return self.reason

    def require_ready(self) -> ActiveModel:
        """What serves this model; ModelNotReady (503) while it loads, failed or stopped,
        ModelStalled (503) while a run of it is past its deadline."""
        active = self.active if self.state is ModelState.READY else None
        if active is not None and (stalled := active.batcher.stalled) is not None:
            raise ModelStalled(f"model {self.name!r} is stalled: {stalled}")
        if self.active is None or not self.ready:
            reason = self.status_reason or "not ready"
            raise ModelNotReady(f"model {self.name!r} is not ready: {reason}")
        return self.active
