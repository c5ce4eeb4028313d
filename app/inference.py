"""The transport-agnostic prediction handler: one item in, one prediction (or ServiceError) out.

HTTP routes (and later other protocols, e.g. Open Inference Protocol v2) are thin shells over
`InferenceService.predict`, so validation, batching and timings behave the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.errors import InvalidUtf8, QueueFull, TextTooLong, as_service_error
from app.hooks import ServingHooks
from app.loaded_bundle import LoadedBundle
from app.out_of_domain import refuse_out_of_domain
from app.postprocess import Prediction
from app.preprocess import PreprocessPool
from app.registry import ModelRegistry
from app.settings import Settings
from app.timing import PhaseTimings


@dataclass(frozen=True)
class PredictionResult:
    model: LoadedBundle
    prediction: Prediction
    timings: PhaseTimings


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
        try:
            with batcher.expecting():  # lets a waiting batch hold for this item
                prepared, timings.preprocess = await self.pool.run(bundle.prepare, image, text)
        except QueueFull:
            self.hooks.item_rejected(bundle.name, "queue_full")
            raise
        self.hooks.input_size(bundle.name, prepared.image_pixels, prepared.text_tokens)
        outcome = await batcher.submit(prepared, deadline)
        timings.queue = outcome.queue_s
        timings.inference = outcome.inference_s
        timings.batch_size = outcome.batch_size
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
