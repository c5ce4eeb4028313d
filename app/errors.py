"""One error base class with an HTTP status and a stable machine code, rendered in one place.

Every failure a client can see — our own, FastAPI's validation errors, Starlette's 404/405 —
becomes `{"error": {"code": ..., "message": ...}}`. Messages never carry stack traces or
request content (medical data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from app.contract.image import ImageDecodeError


class ServiceError(Exception):
    """Base of every client-visible error: `status` (HTTP) and `code` (stable, machine-readable)."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequest(ServiceError):
    """The request is malformed."""

    status = 422
    code = "invalid_request"


class MissingField(ServiceError):
    """A required field is absent."""

    status = 422
    code = "missing_field"


class BadRequest(ServiceError):
    """The request cannot be parsed (e.g. broken multipart framing)."""

    status = 400
    code = "bad_request"


class InvalidJson(ServiceError):
    """The body is not valid JSON."""

    status = 400
    code = "invalid_json"


class InvalidBase64(ServiceError):
    """`image` is not valid base64."""

    status = 422
    code = "invalid_base64"


class InvalidUtf8(ServiceError):
    """Text is not valid UTF-8."""

    status = 422
    code = "invalid_utf8"


class TextTooLong(ServiceError):
    """Text exceeds MAX_TEXT_CHARS."""

    status = 422
    code = "text_too_long"


class TooManyItems(ServiceError):
    """Batch exceeds MAX_BATCH_ITEMS."""

    status = 422
    code = "too_many_items"


class UnknownRole(ServiceError):
    """Role is not student/teacher."""

    status = 422
    code = "unknown_role"


class UnknownModel(ServiceError):
    """No such bundle or task set."""

    status = 404
    code = "unknown_model"


class NotFound(ServiceError):
    """No such route."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ServiceError):
    """Wrong HTTP method."""

    status = 405
    code = "method_not_allowed"


class BodyTooLarge(ServiceError):
    """Body exceeds MAX_BODY_BYTES."""

    status = 413
    code = "body_too_large"


class UnsupportedMediaType(ServiceError):
    """Content-Type is not accepted."""

    status = 415
    code = "unsupported_media_type"


class QueueFull(ServiceError):
    """The model's queue is full; retry later."""

    status = 429
    code = "queue_full"


class ModelNotReady(ServiceError):
    """The model is not ready."""

    status = 503
    code = "model_not_ready"


class ModelStalled(ServiceError):
    """A model run passed RUN_TIMEOUT_S: its items, the queued ones and new ones until the run
    returns are refused (the model is not ready meanwhile); retry on another replica."""

    status = 503
    code = "model_stalled"


class LoadFailed(ServiceError):
    """A repository load could not build, verify or warm up the bundle; the version that was
    serving (if any) still serves."""

    status = 400
    code = "load_failed"


class Unauthorized(ServiceError):
    """API_KEY is set and the request carries no valid key (Authorization: Bearer / X-API-Key)."""

    status = 401
    code = "unauthorized"


class Draining(ServiceError):
    """The server is shutting down and no longer takes new work; retry on another replica."""

    status = 503
    code = "draining"


class DeadlineExceeded(ServiceError):
    """REQUEST_TIMEOUT_S passed before inference."""

    status = 504
    code = "deadline_exceeded"


class RequestTimeout(ServiceError):
    """The body did not arrive within BODY_TIMEOUT_S, or arrived below BODY_MIN_RATE; the
    connection is closed (a slow client must not hold it)."""

    status = 408
    code = "request_timeout"


class ClientClosed(ServiceError):
    """The client closed the connection before its answer: not a server error. Nobody reads
    this answer; it exists so metrics and the access line count it (nginx's 499)."""

    status = 499
    code = "client_closed"


class InferenceFailed(ServiceError):
    """The model run failed."""

    status = 500
    code = "inference_failed"


class NonFiniteOutput(ServiceError):
    """The model computed NaN or infinite outputs for this item: never shown as probabilities."""

    status = 500
    code = "non_finite_output"


# ImageDecodeError codes (app.contract.image) → HTTP status.
IMAGE_ERROR_STATUS: dict[str, int] = {
    "unsupported_image": 415,
    "animated_image": 415,
    "invalid_image": 422,
    "empty_image": 422,
    "image_too_small": 422,
    "image_too_large": 413,
}


class ImageRejected(ServiceError):
    """An image failed decoding or limits; status and code come from the ImageDecodeError."""

    def __init__(self, exc: ImageDecodeError) -> None:
        super().__init__(exc.message)
        self.code = exc.code
        self.status = IMAGE_ERROR_STATUS.get(exc.code, 422)


def as_service_error(exc: BaseException) -> ServiceError:
    """Any exception → the ServiceError a client should see (unknown ones become 500)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ImageDecodeError):
        return ImageRejected(exc)
    return ServiceError("internal error")


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


ERROR_CODE_KEY = "error_code"


def answer_error(scope: Scope, exc: ServiceError) -> JSONResponse:
    """The error response, its code recorded in the request's state: the one place metrics
    (rejections) and the access log learn it. Every layer that answers an error uses this."""
    scope.setdefault("state", {})[ERROR_CODE_KEY] = exc.code
    return error_response(exc)


def recorded_error_code(scope: Scope) -> str:
    """The code `answer_error` recorded for this request; '' if it answered no error."""
    code = scope.get("state", {}).get(ERROR_CODE_KEY, "")
    return code if isinstance(code, str) else ""


def _describe_validation(errors: list[Any]) -> ServiceError:
    if any(e.get("type") == "json_invalid" for e in errors):
        return InvalidJson("the request body is not valid JSON")
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    message = "; ".join(parts)
    if errors and all(e.get("type") == "missing" for e in errors):
        return MissingField(message)
    return InvalidRequest(message)


def validation_error(errors: list[Any]) -> ServiceError:
    """pydantic/FastAPI error list → one ServiceError (missing_field, invalid_json or invalid)."""
    return _describe_validation(errors)


_HTTP_CODES: dict[int, type[ServiceError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: BodyTooLarge,
    415: UnsupportedMediaType,
}


def install_error_handlers(app: FastAPI) -> None:
    """Render every error through ServiceError.body(). Unexpected errors from the routes are
    logged and answered by `app.unhandled.UnhandledErrors`; those raised in outer middlewares
    reach `on_unexpected`, which Starlette re-raises to uvicorn afterwards, and uvicorn's record
    (`uvicorn.error`, with the trace) is their one log record, so it renders without logging."""

    def render(request: Request, err: ServiceError) -> JSONResponse:
        return answer_error(request.scope, err)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        return render(request, as_service_error(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return render(request, validation_error(list(exc.errors())))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        cls = _HTTP_CODES.get(exc.status_code)
        if cls is not None:
            err: ServiceError = cls(str(exc.detail))
        elif exc.status_code < 500:
            err = BadRequest(str(exc.detail))
            err.status = exc.status_code
        else:
            err = ServiceError("internal error")
        err.headers = dict(exc.headers or {}) | err.headers
        return render(request, err)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return render(request, ServiceError("internal error"))

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(ImageDecodeError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
