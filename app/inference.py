"""The transport-agnostic prediction handler: one item in, one prediction (or ServiceError) out.

HTTP routes (and later other protocols, e.g. Open Inference Protocol v2) are thin shells over
`InferenceService.predict`, so validation, batching and timings behave the same everywhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from app.batcher import BatchOutcome, DynamicBatcher
from app.errors import InvalidUtf8, QueueFull, TextTooLong, as_service_error
from app.hooks import ServingHooks
from app.loaded_bundle import LoadedBundle, Outputs
from app.out_of_domain import refuse_out_of_domain
from app.postprocess import Prediction
from app.preprocess import PreparedInputs, PreprocessPool, resolve_soon
from app.registry import ModelRegistry
from app.settings import Settings
from app.timing import PhaseTimings


@dataclass(frozen=True)
class PredictionResult:
    model: LoadedBundle
    prediction: Prediction
    timings: PhaseTimings


class Handoff:
    """One item's way through a preprocessing worker straight into its model's batch queue.

    The worker prepares the item and queues it itself (`DynamicBatcher.submit_announced`), so
    the event loop is woken once per item, by its outcome, not also between preprocessing and
    queueing (issue 26). A failed preparation completes `outcome` with its error."""

    def __init__(
        self,
        bundle: LoadedBundle,
        batcher: DynamicBatcher[PreparedInputs, Outputs],
        image: bytes,
        text: str,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.bundle, self.batcher, self.image, self.text = bundle, batcher, image, text
        self.deadline, self.loop = deadline, loop
        self.outcome: asyncio.Future[BatchOutcome[Outputs]] = loop.create_future()
        self.prepared: PreparedInputs | None = None  # set by the worker before outcome is done
        self.preprocess_s = 0.0  # including the wait for a worker
        self._start = time.perf_counter()

    def run(self) -> None:
        """In a preprocessing worker."""
        try:
            prepared = self.bundle.prepare(self.image, self.text)
        except Exception as exc:
            self.batcher.submit_announced(None, self.deadline, self.outcome)
            resolve_soon(self.loop, self.outcome, error=exc)
            return
        self.preprocess_s = time.perf_counter() - self._start
        self.prepared = prepared
        try:
            self.batcher.submit_announced(prepared, self.deadline, self.outcome)
        except Exception as exc:  # a hook failed: answer the caller, never leave it waiting
            resolve_soon(self.loop, self.outcome, error=exc)
            raise


class InferenceService:
    """Owns the registry and the preprocessing pool; answers one item at a time."""

    def __init__(
        self, settings: Settings, registry: ModelRegistry, hooks: ServingHooks | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.hooks = hooks or ServingHooks()
        self.pool = PreprocessPool(settings.preprocess_workers, max_pending=settings.queue_size)

    async def predict(
        self,
        image: bytes,
        text: str,
        model: str | None = None,
        role: str | None = None,
        timings: PhaseTimings | None = None,
    ) -> PredictionResult:
        """Answer one item; every failure is reported once to hooks.item_failed, then raised."""
        try:
            return await self._predict(image, text, model, role, timings or PhaseTimings())
        except Exception as exc:
            err = as_service_error(exc)
            self.hooks.item_failed(self._model_name(model, role), err.code, err.status)
            raise

    def _model_name(self, model: str | None, role: str | None) -> str:
        """The bundle a failed item was meant for; '' when the request names none that exists."""
        try:
            return self.registry.lookup(model, role).name
        except Exception:
            return ""

    async def _predict(
        self,
        image: bytes,
        text: str,
        model: str | None,
        role: str | None,
        timings: PhaseTimings,
    ) -> PredictionResult:
        deadline = time.monotonic() + self.settings.request_timeout_s
        if len(text) > self.settings.max_text_chars:
            raise TextTooLong(
                f"text has {len(text)} characters; the limit is {self.settings.max_text_chars}"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUtf8("text contains characters that are not valid UTF-8") from None
        active = self.registry.resolve(model, role)
        bundle, batcher = active.bundle, active.batcher
        handoff = Handoff(bundle, batcher, image, text, deadline, asyncio.get_running_loop())
        batcher.announce()  # lets a waiting batch hold for this item
        try:
            self.pool.submit(handoff.run)
        except QueueFull:
            batcher.submit_announced(None, deadline, handoff.outcome)
            self.hooks.item_rejected(bundle.name, "queue_full")
            raise
        try:
            outcome = await handoff.outcome
        finally:
            if (prepared := handoff.prepared) is not None:
                self.hooks.input_size(bundle.name, prepared.image_pixels, prepared.text_tokens)
                timings.preprocess = handoff.preprocess_s
        timings.queue = outcome.queue_s
        timings.inference = outcome.inference_s
        timings.batch_size = outcome.batch_size
        assert prepared is not None  # an outcome means the item was prepared
        prediction = bundle.postprocess(
            outcome.output, self.settings.low_confidence_threshold, prepared.text_empty
        )
        if sides := prediction.out_of_domain:
            self.hooks.out_of_domain(bundle.name, sides)
            if self.settings.refuse_out_of_domain:
                refuse_out_of_domain(bundle.name, prediction)
        timings.finish()
        self.hooks.item_done(bundle.name, timings, prediction)
        return PredictionResult(bundle, prediction, timings)

    async def close(self) -> None:
        await self.registry.close()
        self.pool.shutdown()
