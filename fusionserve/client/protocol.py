"""What the sync and async clients share: request building, the retry decision and response
parsing. Only sending and sleeping differ between the two, so the loops around this stay tiny."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx

from fusionserve.client.errors import ApiError, ConnectionFailed, FusionServeError, RequestTimedOut
from fusionserve.client.images import ImageInput, image_base64, read_image
from fusionserve.client.results import BatchItem, ModelInfo, Prediction
from fusionserve.client.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

logger = logging.getLogger("fusionserve.client")
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = "fusionserve-client/0.1"


def client_options(
    base_url: str, api_key: str | None, timeout: float | httpx.Timeout
) -> dict[str, Any]:
    """httpx client arguments: base URL, timeouts, and the key as a Bearer token."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return {"base_url": base_url.rstrip("/"), "timeout": timeout, "headers": headers}


def predict_request(
    image: ImageInput, text: str, model: str | None, role: str | None
) -> dict[str, Any]:
    """multipart/form-data: the image goes as a file, no base64 inflation."""
    name, data, media = read_image(image)
    fields = {"text": text, "model": model, "role": role}
    return {
        "files": {"image": (name, data, media)},
        "data": {k: v for k, v in fields.items() if v is not None},
    }


def batch_request(
    items: Iterable[tuple[ImageInput, str]], model: str | None, role: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [{"image": image_base64(image), "text": text} for image, text in items]
    }
    body.update({k: v for k, v in (("model", model), ("role", role)) if v is not None})
    return {"json": body}


def transport_error(exc: httpx.TransportError) -> FusionServeError:
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimedOut(f"no answer in time ({type(exc).__name__})")
    return ConnectionFailed(f"cannot reach the server: {exc or type(exc).__name__}")


def retry_wait(
    policy: RetryPolicy,
    attempt: int,
    response: httpx.Response | None,
    failure: httpx.TransportError | None,
) -> float | None:
    """Seconds to wait before retrying, or None to stop here. A failure that will not be
    retried is raised (as a FusionServeError); a final response is returned to the caller."""
    if failure is not None:
        # A connect error never reached the server; a timed-out request may still be running
        # there, so it is not sent again (that would double the load of an overloaded server).
        if attempt >= policy.max_retries or not isinstance(failure, httpx.ConnectError):
            raise transport_error(failure) from None
        wait = policy.delay(attempt, None)
        logger.warning("connection failed; retry %d in %.2fs", attempt + 1, wait)
        return wait
    assert response is not None
    if response.status_code not in RETRY_STATUSES or attempt >= policy.max_retries:
        return None
    wait = policy.delay(attempt, parse_retry_after(response.headers.get("retry-after")))
    logger.warning(
        "server answered %d %s; retry %d in %.2fs",
        response.status_code,
        error_code(response),
        attempt + 1,
        wait,
    )
    return wait


def error_code(response: httpx.Response) -> str:
    return str(_error_body(response).get("code", f"http_{response.status_code}"))


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def checked_json(response: httpx.Response) -> Any:
    """The body of a 2xx answer; anything else raises ApiError with the server's code."""
    if response.is_success:
        return response.json()
    error = _error_body(response)
    raise ApiError(
        response.status_code,
        str(error.get("code", f"http_{response.status_code}")),
        str(error.get("message") or response.reason_phrase or "request failed"),
        request_id=response.headers.get("x-request-id"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def prediction(response: httpx.Response) -> Prediction:
    return Prediction.from_json(checked_json(response), response.headers.get("x-request-id"))


def batch_items(response: httpx.Response) -> list[BatchItem]:
    results = checked_json(response)["results"]
    return sorted((BatchItem.from_json(r) for r in results), key=lambda item: item.index)


def model_list(response: httpx.Response) -> list[ModelInfo]:
    return [ModelInfo.from_json(m) for m in checked_json(response)["models"]]
