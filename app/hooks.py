"""Observation points of the serving path, as no-op methods.

Metrics, tracing or audit layers subclass `ServingHooks` and pass it to `create_app`; the core
calls these methods and never imports a metrics library. Every duration is in seconds. Hooks
must be cheap and must not raise (they run on the event loop or the inference thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.postprocess import Prediction
    from app.timing import PhaseTimings


class ServingHooks:
    """Override what you need; the defaults do nothing."""

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
        """A bundle finished loading (ready or not)."""

    def model_labels(self, model: str, labels: dict[str, list[str]]) -> None:
        """A bundle's manifest was read: its tasks and their labels (before model_loaded)."""

    def queue_depth(self, model: str, depth: int) -> None:
        """Items waiting in a model's batch queue changed."""

    def batch_done(self, model: str, size: int, inference_s: float, ok: bool) -> None:
        """One graph run finished (size items; ok=False when the batched run raised)."""

    def item_rejected(self, model: str, reason: str) -> None:
        """An item was refused before inference: queue_full, deadline_exceeded, ..."""

    def item_failed(self, model: str, code: str, status: int) -> None:
        """One item was answered with an error (called once per failed item, from any layer,
        in the caller's context); model is '' when the requested name matches no bundle."""

    def item_done(self, model: str, timings: PhaseTimings, prediction: Prediction) -> None:
        """One item was answered successfully (called once per item, also in batches)."""

    def input_size(self, model: str, image_pixels: int, text_tokens: int) -> None:
        """Sizes of one accepted item."""

    def out_of_domain(self, model: str, sides: list[str]) -> None:
        """One item's image and/or text was flagged out of domain (whether answered or refused
        under REFUSE_OUT_OF_DOMAIN)."""

    def model_fault(self, model: str, kind: str) -> None:
        """A model run misbehaved: `exception` (it raised), `non_finite` (NaN/inf outputs),
        `stall` (no answer within RUN_TIMEOUT_S), `slow` (over half of it) or `reload` (the
        model reloaded itself after failed runs in a row). Called on the event loop."""

    def model_swapped(self, model: str, outcome: str) -> None:
        """A load of a new version ended: `swapped` (it serves now) or `refused` (it failed
        verification; the version serving before still serves)."""
