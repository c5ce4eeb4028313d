"""Bundle discovery, verification, loading, warm-up and readiness; model lookup by name/role.

A bundle that fails any step (unreadable manifest, sha256 mismatch, session error, warm-up
output wrong) is kept as *failed* with a clear reason, and the others serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from app.batcher import DynamicBatcher
from app.contract.image import ImageLimits
from app.contract.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    Manifest,
    checksum_mismatches,
)
from app.contract.self_test import SELF_TEST_LIMITS, compare, self_test_case
from app.contract.session import CPU
from app.contract.tasks import TASK_SETS
from app.contract.text import TextEncoder
from app.errors import InvalidRequest, ModelNotReady, UnknownModel, UnknownRole
from app.hooks import ServingHooks
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.runtime import OnnxModel, load_onnx_model
from app.settings import Settings

logger = logging.getLogger("fusionserve.registry")

ROLES = ("student", "teacher")
WARMUP_BATCH = 3  # odd and > 1: catches graphs exported with a fixed batch axis
Outputs = dict[str, np.ndarray]


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class BundleError(Exception):
    """A bundle cannot be served; the message is the reason shown in /models and /health."""


@dataclass
class ServedModel:
    """One bundle and everything needed to serve it."""

    name: str
    bundle_dir: Path
    state: ModelState = ModelState.LOADING
    reason: str | None = "loading"
    manifest: Manifest | None = None
    onnx: OnnxModel | None = None
    inputs: InputSpec | None = None
    batcher: DynamicBatcher[PreparedInputs, Outputs] | None = None
    load_s: float = 0.0
    warmup_s: float = 0.0

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY and self.batcher is not None and self.batcher.running

    @property
    def status_reason(self) -> str | None:
        if self.state is ModelState.READY and not self.ready:
            failure = self.batcher.failure if self.batcher is not None else None
            return failure or "batcher is not running"
        return self.reason


def _check_outputs(manifest: Manifest, outputs: list[Outputs]) -> None:
    for row in outputs:
        for spec in manifest.tasks:
            probs = np.asarray(row[spec.output], dtype=np.float64)
            if probs.shape != (len(spec.labels),) or not np.all(np.isfinite(probs)):
                raise BundleError(f"warm-up: {spec.output} has shape {probs.shape} or NaNs")
            if abs(float(probs.sum()) - 1.0) > 1e-3:
                raise BundleError(f"warm-up: {spec.output} sums to {probs.sum():.4f}, not 1")


class ModelRegistry:
    """All bundles this process serves, by name."""

    def __init__(self, settings: Settings, hooks: ServingHooks | None = None) -> None:
        self.settings = settings
        self.hooks = hooks or ServingHooks()
        self.models: dict[str, ServedModel] = {}
        self.draining = False
        self.loading_done = False
        self._discover()

    # -- discovery and loading -------------------------------------------------------------

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
            else:  # early, so task-set aliases resolve (to 503) while loading; load re-reads
                with contextlib.suppress(Exception):
                    served.manifest = Manifest.load(served.bundle_dir)
            self.models[name] = served

    async def load_all(self) -> None:
        """Load, verify and warm up every bundle (one at a time, off the event loop)."""
        try:
            for served in self.models.values():
                if served.state is ModelState.LOADING and not self.draining:
                    await self._load(served)
        finally:
            self.loading_done = True

    async def _load(self, served: ServedModel) -> None:
        try:
            await asyncio.to_thread(self._load_sync, served)
            served.batcher = DynamicBatcher(
                served.name,
                served.onnx.run_batch,  # type: ignore[union-attr]
                max_batch_size=self.settings.max_batch_size,
                max_delay_s=self.settings.max_delay_s,
                queue_size=self.settings.queue_size,
                hooks=self.hooks,
            )
            served.batcher.start()
            served.state, served.reason = ModelState.READY, None
            logger.info(
                "model %s ready (load %.2fs, warm-up %.2fs, %s, %s)",
                served.name,
                served.load_s,
                served.warmup_s,
                served.onnx.provider if served.onnx else "?",
                served.onnx.precision if served.onnx else "?",
            )
        except Exception as exc:
            served.state = ModelState.FAILED
            served.reason = str(exc) if isinstance(exc, BundleError) else f"load failed: {exc}"
            logger.error("model %s not ready: %s", served.name, served.reason)
        onnx = served.onnx
        self.hooks.model_loaded(
            served.name,
            ready=served.ready,
            load_s=served.load_s,
            warmup_s=served.warmup_s,
            version=served.manifest.version if served.manifest else "",
            provider=onnx.provider if onnx else "",
            precision=onnx.precision if onnx else "",
        )

    def _load_sync(self, served: ServedModel) -> None:
        start = time.perf_counter()
        try:
            manifest = Manifest.load(served.bundle_dir)
        except Exception as exc:
            raise BundleError(f"manifest unreadable: {exc}") from None
        served.manifest = manifest
        self.hooks.model_labels(served.name, {t.name: list(t.labels) for t in manifest.tasks})
        if unlisted := [f for f in (MODEL_FILE, TOKENIZER_FILE) if f not in manifest.files]:
            raise BundleError(f"manifest has no sha256 for {unlisted}")
        if problems := checksum_mismatches(served.bundle_dir, manifest):
            raise BundleError("checksum mismatch: " + "; ".join(problems))
        pre = manifest.preprocessing
        encoder = TextEncoder.from_file(
            served.bundle_dir / TOKENIZER_FILE, pre.max_text_length, pre.empty_text
        )
        limits = ImageLimits(
            max_pixels=self.settings.max_image_pixels, min_side=self.settings.min_image_side
        )
        served.inputs = InputSpec.from_manifest(manifest, encoder, limits)
        served.onnx = load_onnx_model(served.bundle_dir, manifest, self.settings)
        served.load_s = time.perf_counter() - start
        start = time.perf_counter()
        self._warm_up(served)
        served.warmup_s = time.perf_counter() - start

    def _warm_up(self, served: ServedModel) -> None:
        """Run the bundle's self-test sample (or a blank one) at batch 1 and WARMUP_BATCH."""
        manifest, onnx, spec = served.manifest, served.onnx, served.inputs
        assert manifest is not None and onnx is not None and spec is not None
        relaxed = dataclasses.replace(spec, limits=SELF_TEST_LIMITS)
        sample = manifest.self_test
        if sample is not None:
            image = (served.bundle_dir / sample.image).read_bytes()
            item = prepare(image, sample.text, relaxed)
        else:
            size = manifest.preprocessing.image_size
            blank = np.zeros((3, size, size), dtype=np.float32)
            encoded = spec.encoder.encode([""])
            item = PreparedInputs(
                blank, encoded.input_ids[0], encoded.attention_mask[0], 0, 0, False
            )
        try:
            single = onnx.run_batch([item])
            several = onnx.run_batch([item] * WARMUP_BATCH)
        except Exception as exc:
            raise BundleError(f"warm-up inference failed: {exc}") from None
        _check_outputs(manifest, single + several)
        case = self_test_case(manifest, "int8" if onnx.precision == "int8" else "fp32")
        if case is None or onnx.provider != CPU:  # other devices round differently
            return
        _, mismatches = compare(case, manifest, single[0])
        if mismatches:
            first = mismatches[0]
            raise BundleError(
                f"self-test mismatch on {first.output}: {first.problem} "
                "(preprocessing or graph differs from export)"
            )

    async def close(self) -> None:
        """Drain: refuse new items, finish queued ones, stop every batcher."""
        self.draining = True
        await asyncio.gather(
            *(m.batcher.stop() for m in self.models.values() if m.batcher is not None)
        )

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

    def resolve(self, model: str | None, role: str | None = None) -> ServedModel:
        """lookup() for serving: the model must be ready."""
        served = self.lookup(model, role)
        if not served.ready:
            reason = served.status_reason or "not ready"
            raise ModelNotReady(f"model {served.name!r} is not ready: {reason}")
        return served

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready?, reasons it is not): every configured model ready, not draining."""
        reasons = []
        if self.draining:
            reasons.append("server is draining")
        if not self.models:
            reasons.append(f"no bundles found under {self.settings.bundle_dir}")
        for m in self.models.values():
            if not m.ready:
                reasons.append(f"{m.name}: {m.status_reason}")
        return not reasons, reasons
