"""The bundles this process serves: discovery, lifecycle (load, start, drain) and lookup.

Loading itself is `app.bundle_loader`'s. A bundle that fails any step (unreadable manifest,
sha256 mismatch, session error, warm-up output wrong) is kept as *failed* with a clear
reason, and the others serve. Later loads of a model (`load`: the repository API, watch mode,
a self-reload) build the new version beside the one serving and switch with one assignment;
`app.model_swap` has the steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from app.batcher import DynamicBatcher
from app.contract.manifest import MANIFEST_FILE, Manifest
from app.contract.session import concurrent_runs, max_batch_size
from app.contract.tasks import TASK_SETS
from app.errors import InvalidRequest, LoadFailed, UnknownModel, UnknownRole
from app.fault_injection import injector
from app.hooks import ServingHooks
from app.lifecycle import Lifecycle, ServiceState
from app.loaded_bundle import LoadedBundle, Outputs
from app.model_swap import ModelSwap
from app.preprocess import PreparedInputs
from app.run_guard import RunGuard, non_finite_outputs, run_timeout_s
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
        self.faults = injector(settings.fault_injection)  # tests only; None in production
        self.swap = ModelSwap(self)
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
        with contextlib.suppress(LoadFailed):  # the reason is the model's own, in /health
            await self.swap.load(served)

    async def load(self, name: str) -> ServedModel:
        """Load `name`'s folder again beside the version serving now, then switch to it
        (`app.model_swap`); LoadFailed says why not, and the old version still serves."""
        return await self.swap.load(self._named(name))

    async def unload(self, name: str) -> ServedModel:
        """Stop serving `name` (its queued items finish first)."""
        return await self.swap.unload(self._named(name))

    def _named(self, name: str) -> ServedModel:
        """A configured model by its exact name (no task-set aliases: loads are explicit)."""
        if name not in self.models:
            raise UnknownModel(f"unknown model {name!r}; configured: {sorted(self.models)}")
        return self.models[name]

    def start_batcher(self, bundle: LoadedBundle) -> DynamicBatcher[PreparedInputs, Outputs]:
        """The batcher for one loaded version, with its run guard and (tests) its faults."""
        run = bundle.run_batch
        if self.faults is not None:
            run = self.faults.wrap(bundle.name, run)  # type: ignore[arg-type,assignment]
        guard = RunGuard(
            timeout_s=run_timeout_s(self.settings, bundle.warmup_s),
            max_failures=self.settings.max_consecutive_failures,
            on_unhealthy=lambda reason: self.swap.reload_soon(bundle, reason),
        )
        batcher = DynamicBatcher(
            bundle.name,
            run,
            max_batch_size=max_batch_size(bundle.settings.max_batch_size, bundle.onnx.device),
            max_delay_s=bundle.settings.max_delay_s,
            queue_size=bundle.settings.queue_size,
            hooks=self.hooks,
            guard=guard,
            check_output=non_finite_outputs,
            concurrent_runs=concurrent_runs(
                bundle.settings.concurrent_runs,
                bundle.onnx.device,
                bundle.settings.intra_op_threads,
            ),
        )
        batcher.start()
        return batcher

    async def close(self) -> None:
        """Drain: refuse new items, finish queued ones, stop every batcher."""
        self.lifecycle.stop()
        await self.swap.close()
        if self.faults is not None:
            self.faults.release()  # an injected hang must not outlive the app
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
            if not m.ready and m.state is not ModelState.UNLOADED:
                reasons.append(f"{m.name}: {m.status_reason}")
        ready = self.lifecycle.state is ServiceState.READY and not reasons
        return ready, reasons

    def liveness(self) -> tuple[bool, list[str]]:
        """(alive?, why not): a model run stalled for longer than STALL_GRACE_S after its
        deadline will not come back by itself (a stuck device); a restart is the remedy."""
        now, grace = time.monotonic(), self.settings.stall_grace_s
        reasons = []
        for m in self.models.values():
            batcher = m.active.batcher if m.active is not None else None
            since = batcher.stalled_since if batcher is not None else None
            if batcher is not None and since is not None and now - since > grace:
                reasons.append(f"{m.name}: stalled for {now - since:.0f}s: {batcher.stalled}")
        return not reasons, reasons
