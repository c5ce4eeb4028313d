"""Loading a model while it serves: build and warm the new version beside the old one, switch
with one assignment, let the old one finish what it holds, then free it.

Every load goes through `load` — the first one at start-up, the repository API's, watch mode's
and the self-reload after failed runs in a row — so they verify alike (`app.bundle_loader`:
checksums, session, warm-up self-test). A request resolves a model's `active` part once, before
its first await, so it runs wholly on one version and its answer names that version. A load
that fails leaves a serving version serving and says why (`LoadFailed`). One load per model at
a time (a lock); others' models are never blocked. Self-reloads in a row, and retries of one
that failed, are paced by `app.reload_backoff` (exponential, capped); an explicit load or
unload replaces a self-reload still waiting its turn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from app.bundle_error import BundleError
from app.bundle_loader import load_bundle
from app.errors import LoadFailed
from app.loaded_bundle import LoadedBundle
from app.reload_backoff import ReloadBackoff
from app.served_model import ActiveModel, ModelState, ServedModel

if TYPE_CHECKING:
    from app.registry import ModelRegistry

logger = logging.getLogger("fusionserve.registry")


class ModelSwap:
    """The registry's loads, unloads and self-reloads."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        settings = registry.settings
        self.backoff = ReloadBackoff(settings.reload_backoff_s, settings.reload_backoff_max_s)
        self._waiting: dict[str, asyncio.Task[None]] = {}  # self-reloads in their backoff

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def load(self, served: ServedModel) -> ServedModel:
        """Build, verify and warm `served`'s folder; switch to it; drain the old version."""
        self._cancel_waiting(served.name)
        return await self._load(served)

    async def _load(self, served: ServedModel) -> ServedModel:
        async with self._lock(served.name):
            if self.registry.lifecycle.shutting_down:
                raise LoadFailed("the server is shutting down")
            bundle = await self._build(served)
            old = served.active
            served.active = ActiveModel(bundle, self.registry.start_batcher(bundle))
            served.manifest = bundle.manifest
            served.state, served.reason = ModelState.READY, None
            self.backoff.ready(served.name)
            self._announce(served, bundle, swapped=old is not None)
            if old is not None:
                await old.batcher.retire()  # its in-flight and queued items finish on it
            return served

    async def _build(self, served: ServedModel) -> LoadedBundle:
        """The new version, or LoadFailed: a version that serves keeps serving; a model that
        was failing (a self-reload) or had none becomes failed with the reason."""
        hooks = self.registry.hooks
        if served.manifest is not None:
            hooks.model_labels(served.name, {t.name: list(t.labels) for t in served.manifest.tasks})
        try:
            return await asyncio.to_thread(load_bundle, served.bundle_dir, self.registry.settings)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, BundleError) else f"load failed: {exc}"
        if served.active is not None and served.state is ModelState.READY:
            logger.warning("model %s: new version refused, the old one serves: %s",
                           served.name, reason)  # fmt: skip
            hooks.model_swapped(served.name, "refused")
            raise LoadFailed(f"model {served.name!r}: {reason}; the version serving is kept")
        self._failed(served, reason)
        if (old := served.active) is not None:
            served.active = None
            await old.batcher.retire()
        raise LoadFailed(f"model {served.name!r}: {reason}")

    def _announce(self, served: ServedModel, bundle: LoadedBundle, swapped: bool) -> None:
        onnx = bundle.onnx
        logger.info(
            "model %s ready (version %s, load %.2fs, warm-up %.2fs, %s, %s)",
            served.name,
            bundle.version,
            bundle.load_s,
            bundle.warmup_s,
            onnx.provider,
            onnx.precision,
        )
        labels = {t.name: list(t.labels) for t in bundle.manifest.tasks}
        self.registry.hooks.model_labels(served.name, labels)
        self._loaded(served, bundle)
        if swapped:
            self.registry.hooks.model_swapped(served.name, "swapped")
        self._settle()

    def _loaded(self, served: ServedModel, bundle: LoadedBundle | None) -> None:
        onnx = bundle.onnx if bundle is not None else None
        version = served.manifest.version if served.manifest is not None else ""
        self.registry.hooks.model_loaded(
            served.name,
            ready=served.ready,
            load_s=bundle.load_s if bundle is not None else 0.0,
            warmup_s=bundle.warmup_s if bundle is not None else 0.0,
            version=bundle.version if bundle is not None else version,
            provider=onnx.provider if onnx is not None else "",
            precision=onnx.precision if onnx is not None else "",
        )

    def _failed(self, served: ServedModel, reason: str) -> None:
        served.state, served.reason = ModelState.FAILED, reason
        logger.error("model %s not ready: %s", served.name, reason)
        self._loaded(served, None)
        self._settle()

    def _settle(self) -> None:
        """After start-up, the service's ready/failed state follows its models."""
        models = self.registry.models.values()
        self.registry.lifecycle.settle(
            all(m.ready or m.state is ModelState.UNLOADED for m in models)
        )

    async def unload(self, served: ServedModel) -> ServedModel:
        """Stop serving `served`; its queued items finish on it first."""
        self._cancel_waiting(served.name)
        async with self._lock(served.name):
            old, served.active = served.active, None
            served.state, served.reason = ModelState.UNLOADED, "unloaded (repository API)"
            logger.info("model %s unloaded", served.name)
            self._loaded(served, None)
            self._settle()
            if old is not None:
                await old.batcher.retire()
            return served

    def reload_soon(self, bundle: LoadedBundle, reason: str) -> None:
        """A version failed runs in a row: not ready now, a fresh load in the background (after
        the backoff when it follows other self-reloads). A version already swapped out (still
        draining) is left alone."""
        served = self.registry.models.get(bundle.name)
        if served is None or served.active is None or served.active.bundle is not bundle:
            return
        if self.registry.lifecycle.shutting_down or served.name in self._waiting:
            return
        served.state, served.reason = ModelState.LOADING, f"reloading: {reason}"
        self._loaded(served, bundle)
        self._schedule(served)

    def _schedule(self, served: ServedModel) -> None:
        delay = self.backoff.next_delay(served.name)
        if delay > 0:
            served.reason = f"{served.reason}; next reload in {delay:g}s (RELOAD_BACKOFF_S)"
        task = asyncio.create_task(self._reload(served, delay), name=f"reload-{served.name}")
        self._waiting[served.name] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self, served: ServedModel, delay: float) -> None:
        """Wait out the backoff, reload; a reload that fails is tried again, backing off."""
        try:
            await asyncio.sleep(delay)
        finally:
            if self._waiting.get(served.name) is asyncio.current_task():
                del self._waiting[served.name]
        self.registry.hooks.model_fault(served.name, "reload")
        try:
            await self._load(served)
        except LoadFailed:  # the reason is the model's, in /health/ready
            if served.state is ModelState.FAILED and not self.registry.lifecycle.shutting_down:
                self._schedule(served)

    def _cancel_waiting(self, name: str) -> None:
        if (task := self._waiting.pop(name, None)) is not None:
            task.cancel()

    async def close(self) -> None:
        """Shutdown: self-reloads in progress are cancelled."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
