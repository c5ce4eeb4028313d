"""The bundles this process serves: discovery, lifecycle (load, start, drain) and lookup.

Loading itself is `app.bundle_loader`'s. A bundle that fails any step (unreadable manifest,
sha256 mismatch, session error, warm-up output wrong) is kept as *failed* with a clear
reason, and the others serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.batcher import DynamicBatcher
from app.bundle_error import BundleError
from app.bundle_loader import load_bundle
from app.contract.manifest import MANIFEST_FILE, Manifest
from app.contract.tasks import TASK_SETS
from app.errors import InvalidRequest, UnknownModel, UnknownRole
from app.hooks import ServingHooks
from app.lifecycle import Lifecycle, ServiceState
from app.loaded_bundle import LoadedBundle, Outputs
from app.preprocess import PreparedInputs
from app.served_model import ActiveModel, ModelState, ServedModel
from app.settings import Settings

logger = logging.getLogger("fusionserve.registry")

ROLES = ("student", "teacher")


class ModelRegistry:
    """All bundles this process serves, by name."""

    def __init__(
        self,
        settings: Settings,
        hooks: ServingHooks | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = hooks or ServingHooks()
        self.lifecycle = lifecycle or Lifecycle()
        self.models: dict[str, ServedModel] = {}
        self._discover()

    @property
    def loading_done(self) -> bool:
        """Every bundle was tried (or shutdown cut loading short)."""
        return self.lifecycle.state is not ServiceState.LOADING

    # -- discovery and lifecycle -----------------------------------------------------------

    def _discover(self) -> None:
        root = self.settings.bundle_dir
        found = {}
        if root.is_dir():
            found = {p.parent.name: p.parent for p in sorted(root.glob(f"*/{MANIFEST_FILE}"))}
        wanted = self.settings.models or list(found)
        for name in wanted:
            served = ServedModel(name, found.get(name, root / name))
            if name not in found:
                served.state = ModelState.FAILED
                served.reason = f"bundle {name!r} not found under {root}"
            else:  # early, so task-set aliases resolve (to 503) while loading
                with contextlib.suppress(Exception):
                    served.manifest = Manifest.load(served.bundle_dir)
            self.models[name] = served

    async def load_all(self) -> None:
        """Load, verify and warm up every bundle (one at a time, off the event loop)."""
        try:
            for served in self.models.values():
                if served.state is ModelState.LOADING and not self.lifecycle.shutting_down:
                    await self._load(served)
        finally:
            models = self.models.values()
            self.lifecycle.loaded(bool(models) and all(m.ready for m in models))

    async def _load(self, served: ServedModel) -> None:
        if served.manifest is not None:
            labels = {t.name: list(t.labels) for t in served.manifest.tasks}
            self.hooks.model_labels(served.name, labels)
        try:
            bundle = await asyncio.to_thread(load_bundle, served.bundle_dir, self.settings)
        except Exception as exc:
            self._failed(
                served, str(exc) if isinstance(exc, BundleError) else f"load failed: {exc}"
            )
            return
        served.active = ActiveModel(bundle, self._start_batcher(bundle))
        served.state, served.reason = ModelState.READY, None
        onnx = bundle.onnx
        logger.info(
            "model %s ready (load %.2fs, warm-up %.2fs, %s, %s)",
            served.name,
            bundle.load_s,
            bundle.warmup_s,
            onnx.provider,
            onnx.precision,
        )
        self.hooks.model_loaded(
            served.name,
            ready=served.ready,
            load_s=bundle.load_s,
            warmup_s=bundle.warmup_s,
            version=bundle.version,
            provider=onnx.provider,
            precision=onnx.precision,
        )

    def _start_batcher(self, bundle: LoadedBundle) -> DynamicBatcher[PreparedInputs, Outputs]:
        batcher = DynamicBatcher(
            bundle.name,
            bundle.run_batch,
            max_batch_size=bundle.settings.max_batch_size,
            max_delay_s=bundle.settings.max_delay_s,
            queue_size=bundle.settings.queue_size,
            hooks=self.hooks,
        )
        batcher.start()
        return batcher

    def _failed(self, served: ServedModel, reason: str) -> None:
        served.state, served.reason = ModelState.FAILED, reason
        logger.error("model %s not ready: %s", served.name, reason)
        version = served.manifest.version if served.manifest is not None else ""
        self.hooks.model_loaded(
            served.name,
            ready=False,
            load_s=0.0,
            warmup_s=0.0,
            version=version,
            provider="",
            precision="",
        )

    async def close(self) -> None:
        """Drain: refuse new items, finish queued ones, stop every batcher."""
        self.lifecycle.stop()
        active = [m.active for m in self.models.values() if m.active is not None]
        await asyncio.gather(*(a.batcher.stop() for a in active))

    # -- lookup and readiness ----------------------------------------------------------------

    def lookup(self, model: str | None, role: str | None = None) -> ServedModel:
        """A bundle by name, or a task set's bundle of the given role (default: student)."""
        if role is not None and role not in ROLES:
            raise UnknownRole(f"unknown role {role!r}; valid: {list(ROLES)}")
        if model is not None and model in self.models:
            served = self.models[model]
            if role is not None and served.manifest is not None and served.manifest.role != role:
                raise InvalidRequest(
                    f"model {model!r} is a {served.manifest.role}, not a {role}; "
                    f"pass a task set (e.g. {served.manifest.task_set!r}) to choose by role"
                )
            return served
        if model is not None and model not in TASK_SETS:
            raise UnknownModel(f"unknown model {model!r}; available: {sorted(self.models)}")
        task_set = model or self.settings.default_task_set
        role = role or "student"
        candidates = [
            m
            for m in self.models.values()
            if m.manifest is not None and (m.manifest.task_set, m.manifest.role) == (task_set, role)
        ]
        if not candidates:
            raise UnknownModel(f"no {role} bundle is loaded for task set {task_set!r}")
        preferred = f"{task_set}-{role}"
        candidates.sort(key=lambda m: (m.name != preferred, not m.ready, m.name))
        return candidates[0]

    def resolve(self, model: str | None, role: str | None = None) -> ActiveModel:
        """lookup() for serving: the model must be ready."""
        return self.lookup(model, role).require_ready()

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready?, reasons it is not): loading finished, every configured model ready, not
        draining. A batcher that dies later makes its model, and so the service, not ready."""
        reasons = []
        if self.lifecycle.shutting_down:
            reasons.append("server is draining")
        if not self.models:
            reasons.append(f"no bundles found under {self.settings.bundle_dir}")
        for m in self.models.values():
            if not m.ready:
                reasons.append(f"{m.name}: {m.status_reason}")
        ready = self.lifecycle.state is ServiceState.READY and not reasons
        return ready, reasons
