"""Rejection reasons: the few categories operators alert on, from the many stable error codes.

A rejection is a request or item refused before a prediction was made. A request's rejections
are its items' (each refused item once, noted while it was answered: a batch answers 200 with
per-item errors), or — when no item was refused — the request's own, from the error code
`app.errors.answer_error` recorded (body limit, unreadable body, batch-level errors, auth).
`app.observability.recorder.record_request` counts them, once, when the request ends.
"""

from __future__ import annotations

from starlette.requests import Request

from app.observability.request_id import current_request

REASONS = ("queue_full", "timeout", "too_large", "invalid_input", "not_ready", "unauthorized")

_BY_CODE = {
    "queue_full": "queue_full",
    "deadline_exceeded": "timeout",
    "request_timeout": "timeout",
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
# Client errors that are not rejections of a prediction: a wrong URL or method, or a client
# that left before its answer (499, counted under its own status).
_NOT_REJECTIONS = {"not_found", "method_not_allowed", "client_closed"}


def reason_for(code: str, status: int) -> str | None:
    """The rejection reason of an error, or None (success, server error, wrong URL)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in (401, 403):
        return "unauthorized"
    if 400 <= status < 500 and code not in _NOT_REJECTIONS:
        return "invalid_input"
    return None


def request_rejections(
    noted: list[tuple[str, str]], method: str, status: int, code: str, model: str
) -> list[tuple[str, str]]:
    """(model, reason) of every rejection in one answered request."""
    if noted:
        return list(noted)
    if status < 400 or not (method == "POST" or status in (401, 403)):
        return []  # a failed read (GET) is not a refused prediction; auth failures are
    reason = reason_for(code, status)
    return [(model, reason)] if reason is not None else []


def record_rejection(request: Request, reason: str, model: str = "") -> None:
    """Note a rejection decided outside the serving path for the request being answered
    (`request` names it for the caller; the request's context holds the note)."""
    if reason not in REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}; valid: {REASONS}")
    ctx = current_request()
    if ctx is not None:
        ctx.rejections.append((model, reason))
