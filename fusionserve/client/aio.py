"""`AsyncClient`: the asyncio client (services, many cases at once); mirrors `Client`."""

from __future__ import annotations

from asyncio import sleep  # module-level name: tests replace it
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx

from fusionserve.client import protocol
from fusionserve.client.images import ImageInput
from fusionserve.client.results import BatchItem, ModelInfo, Prediction
from fusionserve.client.retry import RetryPolicy


class AsyncClient:
    """Like `Client`, awaitable; one instance can run many requests concurrently."""

    def __init__(
        self,
        base_url: str = protocol.DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = protocol.DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        options = protocol.client_options(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(transport=transport, **options)

    async def predict(
        self,
        image: ImageInput,
        text: str = "",
        model: str | None = None,
        role: str | None = None,
    ) -> Prediction:
        """Both tasks for one image + text; `model` is a bundle name or task set."""
        request = protocol.predict_request(image, text, model, role)
        return protocol.prediction(await self._send("POST", "/predict", **request))

    async def predict_batch(
        self,
        items: Iterable[tuple[ImageInput, str]],
        model: str | None = None,
        role: str | None = None,
    ) -> list[BatchItem]:
        """Many (image, text) pairs in one request; each item succeeds or fails on its own."""
        request = protocol.batch_request(items, model, role)
        return protocol.batch_items(await self._send("POST", "/predict/batch", **request))

    async def models(self) -> list[ModelInfo]:
        return protocol.model_list(await self._send("GET", "/models"))

    async def ready(self) -> bool:
        """True when every model is loaded and warm (`/health/ready` is 200); never retries."""
        try:
            return (await self._http.get("/health/ready")).status_code == 200
        except httpx.TransportError as exc:
            raise protocol.transport_error(exc) from None

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failure = exc
            wait = protocol.retry_wait(self.retry, attempt, response, failure)
            if wait is None:
                assert response is not None
                return response
            await sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
