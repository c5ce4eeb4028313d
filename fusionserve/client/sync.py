"""`Client`: the blocking client (scripts, notebooks). See `fusionserve.client` for the API."""

from __future__ import annotations

from collections.abc import Iterable
from time import sleep  # module-level name: tests replace it
from types import TracebackType
from typing import Any

import httpx

from fusionserve.client import protocol
from fusionserve.client.images import ImageInput
from fusionserve.client.results import BatchItem, ModelInfo, Prediction
from fusionserve.client.retry import RetryPolicy


class Client:
    """Talks to one fusionserve server; reuse one instance (it keeps connections open)."""

    def __init__(
        self,
        base_url: str = protocol.DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = protocol.DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        options = protocol.client_options(base_url, api_key, timeout)
        self._http = httpx.Client(transport=transport, **options)

    def predict(
        self,
        image: ImageInput,
        text: str = "",
        model: str | None = None,
        role: str | None = None,
    ) -> Prediction:
        """Both tasks for one image + text; `model` is a bundle name or task set."""
        request = protocol.predict_request(image, text, model, role)
        return protocol.prediction(self._send("POST", "/predict", **request))

    def predict_batch(
        self,
        items: Iterable[tuple[ImageInput, str]],
        model: str | None = None,
        role: str | None = None,
    ) -> list[BatchItem]:
        """Many (image, text) pairs in one request; each item succeeds or fails on its own."""
        request = protocol.batch_request(items, model, role)
        return protocol.batch_items(self._send("POST", "/predict/batch", **request))

    def models(self) -> list[ModelInfo]:
        return protocol.model_list(self._send("GET", "/models"))

    def ready(self) -> bool:
        """True when every model is loaded and warm (`/health/ready` is 200); never retries."""
        try:
            return self._http.get("/health/ready").status_code == 200
        except httpx.TransportError as exc:
            raise protocol.transport_error(exc) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failure = exc
            wait = protocol.retry_wait(self.retry, attempt, response, failure)
            if wait is None:
                assert response is not None
                return response
            sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
