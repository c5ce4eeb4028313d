"""Rejection reasons: the few categories operators alert on, from the many stable error codes.

A rejection is a request or item refused before a prediction was made. Counted once: per item
when the item reached `InferenceService.predict` (hook `item_failed`), otherwise per request from
the error code of the HTTP response (body limit, unreadable body, batch-level errors, auth).
The auth layer may also call `record_rejection(request, "unauthorized")` directly.
"""

from __future__ import annotations

from starlette.requests import Request

from app.observability.request_id import current_request

REASONS = ("queue_full", "timeout", "too_large", "invalid_input", "not_ready", "unauthorized")

_BY_CODE = {
    "queue_full": "queue_full",
    "deadline_exceeded": "timeout",
    "body_too_large": "too_large",
    "image_too_large": "too_large",
    "text_too_long": "too_large",
    "too_many_items": "too_large",
    "model_not_ready": "not_ready",
    "unauthorized": "unauthorized",
    "forbidden": "unauthorized",
    "invalid_api_key": "unauthorized",
    "missing_api_key": "unauthorized",
}
# Client errors that are not rejections of a prediction: a wrong URL or method.
_NOT_REJECTIONS = {"not_found", "method_not_allowed"}


def reason_for(code: str, status: int) -> str | None:
    """The rejection reason of an error response, or None (success, server error, wrong URL)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in (401, 403):
        return "unauthorized"
    if 400 <= status < 500 and code not in _NOT_REJECTIONS:
        return "invalid_input"
    return None


def record_rejection(request: Request, reason: str, model: str = "") -> None:
    """Count a rejection decided outside the serving path (e.g. by the auth layer).

    The HTTP layer will not count the same request again from its error response.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}; valid: {REASONS}")
    observability = getattr(request.app.state, "observability", None)
    if observability is not None and observability.metrics is not None:
        observability.metrics.rejections.labels(model, reason).inc()
    ctx = current_request()
    if ctx is not None:
        ctx.rejection_counted = True
