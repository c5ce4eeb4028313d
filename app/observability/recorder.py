"""The one writer of ServiceMetrics: serving-path hooks in, HTTP request records in.

`ObservingHooks` is the `ServingHooks` the app runs with. It records metrics (when enabled),
notes which model answered the current request (for the request metrics and the access line),
and forwards every call to the caller's own hooks, if any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.contract.domain import SIDES
from app.hooks import ServingHooks
from app.observability.metrics import FAULT_KINDS, PHASES, SWAP_OUTCOMES, ServiceMetrics
from app.observability.record import RequestRecord
from app.observability.rejections import REASONS, reason_for, request_rejections
from app.observability.request_id import current_request

if TYPE_CHECKING:
    from app.postprocess import Prediction
    from app.timing import PhaseTimings


def _note_model(model: str) -> None:
    ctx = current_request()
    if ctx is not None and model:
        ctx.models.add(model)


class ObservingHooks(ServingHooks):
    def __init__(self, metrics: ServiceMetrics | None, inner: ServingHooks | None = None) -> None:
        self.metrics = metrics
        self.inner = inner or ServingHooks()
        self._info: dict[str, tuple[str, str, str]] = {}  # model → its model_info labels now

    def model_known(self, model: str) -> None:
        """A configured model exists (still loading): its series start at 0, not absent."""
        if (m := self.metrics) is not None:
            m.model_ready.labels(model).set(0)
            m.queue_depth.labels(model).set(0)
            m.batch_failures.labels(model)  # the dashboard's failure rate reads 0, not "No data"
            m.requests.labels("/predict", "POST", "200", model)
            for side in SIDES:
                m.out_of_domain.labels(model, side)  # the drift panel reads 0, not "No data"
            for kind in FAULT_KINDS:
                m.model_faults.labels(model, kind)  # a fault alert reads 0, not "No data"
            for outcome in SWAP_OUTCOMES:
                m.model_swaps.labels(model, outcome)
            for reason in REASONS:
                m.rejections.labels(model, reason)
                m.rejections.labels("", reason)  # refused before any model was chosen

    def model_labels(self, model: str, labels: dict[str, list[str]]) -> None:
        """Every class and head starts at 0, so class mix and low-confidence rates have data."""
        if (m := self.metrics) is not None:
            for task, names in labels.items():
                m.low_confidence.labels(model, task)
                for label in names:
                    m.predictions.labels(model, task, label)
        self.inner.model_labels(model, labels)

    def model_loaded(
        self,
        model: str,
        *,
        ready: bool,
        load_s: float,
        warmup_s: float,
        version: str,
        provider: str,
        precision: str,
    ) -> None:
        if (m := self.metrics) is not None:
            m.model_ready.labels(model).set(1 if ready else 0)
            m.model_load.labels(model).set(load_s)
            m.model_warmup.labels(model).set(warmup_s)
            if version or provider:
                info = (version, provider, precision)
                old = self._info.get(model)
                if old is not None and old != info:  # after a swap only the new version shows
                    m.model_info.remove(model, *old)
                self._info[model] = info
                m.model_info.labels(model, *info).set(1)
        self.inner.model_loaded(
            model,
            ready=ready,
            load_s=load_s,
            warmup_s=warmup_s,
            version=version,
            provider=provider,
            precision=precision,
        )

    def queue_depth(self, model: str, depth: int) -> None:
        if (m := self.metrics) is not None:
            m.child(m.queue_depth, model).set(depth)
        self.inner.queue_depth(model, depth)

    def batch_done(self, model: str, size: int, inference_s: float, ok: bool) -> None:
        if (m := self.metrics) is not None:
            m.child(m.batch_duration, model).observe(inference_s)
            if ok:
                m.child(m.batch_size, model).observe(size)
            else:
                m.child(m.batch_failures, model).inc()
        self.inner.batch_done(model, size, inference_s, ok)

    def item_rejected(self, model: str, reason: str) -> None:
        # Noted by item_failed, which sees every item error once (from any layer).
        self.inner.item_rejected(model, reason)

    def item_failed(self, model: str, code: str, status: int) -> None:
        """Note the item's rejection on its request; record_request counts it."""
        _note_model(model)
        reason = reason_for(code, status)
        ctx = current_request()
        if reason is not None and ctx is not None:
            ctx.rejections.append((model, reason))
        self.inner.item_failed(model, code, status)

    def item_done(self, model: str, timings: PhaseTimings, prediction: Prediction) -> None:
        _note_model(model)
        if (m := self.metrics) is not None:
            for phase in PHASES:
                m.child(m.phase_duration, model, phase).observe(getattr(timings, phase))
            for task, pred in prediction.tasks.items():
                m.child(m.predictions, model, task, pred.label).inc()
                m.child(m.confidence, model, task).observe(pred.probability)
                low = m.child(m.low_confidence, model, task)  # exists at 0: ratios need it
                if pred.low_confidence:
                    low.inc()
        self.inner.item_done(model, timings, prediction)

    def out_of_domain(self, model: str, sides: list[str]) -> None:
        if (m := self.metrics) is not None:
            for side in sides:
                m.out_of_domain.labels(model, side).inc()
        self.inner.out_of_domain(model, sides)

    def model_fault(self, model: str, kind: str) -> None:
        if (m := self.metrics) is not None:
            m.model_faults.labels(model, kind).inc()
        self.inner.model_fault(model, kind)

    def model_swapped(self, model: str, outcome: str) -> None:
        if (m := self.metrics) is not None:
            m.model_swaps.labels(model, outcome).inc()
        self.inner.model_swapped(model, outcome)

    def input_size(self, model: str, image_pixels: int, text_tokens: int) -> None:
        if (m := self.metrics) is not None:
            m.child(m.image_pixels, model).observe(image_pixels)
            m.child(m.text_tokens, model).observe(text_tokens)
        self.inner.input_size(model, image_pixels, text_tokens)


def record_request(
    metrics: ServiceMetrics, record: RequestRecord, noted: list[tuple[str, str]]
) -> None:
    """Request counters and latency, and the only place rejections are counted (see
    `app.observability.rejections`): `noted` are those noted while answering the request."""
    if not record.traffic:
        return
    status = str(record.status)
    metrics.child(metrics.requests, record.route, record.method, status, record.model).inc()
    duration = metrics.child(metrics.request_duration, record.route, record.model)
    duration.observe(record.duration_s)
    found = request_rejections(noted, record.method, record.status, record.error_code, record.model)
    for model, reason in found:
        metrics.rejections.labels(model, reason).inc()
