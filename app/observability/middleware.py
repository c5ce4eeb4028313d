"""One pure-ASGI middleware around the whole app: request id, Server-Timing, metrics, access line.

Outermost of the app's own middlewares, so requests refused early (body too large) are timed,
counted and logged like the rest. It never reads a request body's content: it counts bytes, and
keeps at most the first few KB of an error *response* to read its stable error code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.access_log import log_access
from app.observability.metrics import ServiceMetrics
from app.observability.record import UNMATCHED_ROUTE, RequestRecord, error_code, is_traffic
from app.observability.recorder import record_request
from app.observability.request_id import (
    REQUEST_ID_HEADER,
    RequestContext,
    accept_or_generate,
    bound,
)
from app.observability.server_timing import HEADER as SERVER_TIMING
from app.observability.server_timing import server_timing

logger = logging.getLogger("fusionserve.observability")
MAX_ERROR_BODY = 4096


def _match(scope: Scope, routes: Sequence[BaseRoute], depth: int = 0) -> BaseRoute | None:
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is not Match.FULL:
            continue
        inner = getattr(candidate, "original_router", None)  # FastAPI's included router
        if inner is None:
            return candidate
        if depth < 4 and (found := _match(scope, inner.routes, depth + 1)) is not None:
            return found
    return None


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The matched route's template; for requests answered before routing, match it here."""
    route = scope.get("route") or _match(scope, routes)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics | None, routes: Sequence[BaseRoute]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id")
        ctx = RequestContext(accept_or_generate(incoming))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = ctx.request_id
        traffic = is_traffic(scope.get("path", ""))
        start = time.perf_counter()
        status, bytes_in, bytes_out = 500, 0, 0
        error_body = bytearray()
        metrics = self.metrics if traffic else None
        if metrics is not None:
            metrics.in_flight.inc()

        finished = False

        def finish() -> None:
            """Record once: just before the last body chunk leaves (so a client that has its
            response sees it counted), or on the way out if no complete response was sent."""
            nonlocal finished
            if finished:
                return
            finished = True
            if metrics is not None:
                metrics.in_flight.dec()
            record = RequestRecord(
                request_id=ctx.request_id,
                method=scope.get("method", ""),
                route=route_template(scope, self.routes),
                status=status,
                duration_s=time.perf_counter() - start,
                model=ctx.model,
                error_code=error_code(bytes(error_body)) if error_body else "",
                traffic=traffic,
                timings=state.get("timings"),
                bytes_in=bytes_in,
                bytes_out=bytes_out,
            )
            self._observe(record, ctx)

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = ctx.request_id
                if traffic:
                    elapsed = time.perf_counter() - start
                    value = server_timing(state.get("timings"), elapsed, status < 400)
                    headers.append(SERVER_TIMING, value)
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                bytes_out += len(body)
                if status >= 400 and len(error_body) < MAX_ERROR_BODY:
                    error_body.extend(body[: MAX_ERROR_BODY - len(error_body)])
                if not message.get("more_body", False):
                    finish()
            await send(message)

        try:
            with bound(ctx):
                await self.app(scope, counting_receive, observing_send)
        finally:
            finish()

    def _observe(self, record: RequestRecord, ctx: RequestContext) -> None:
        try:
            if self.metrics is not None:
                record_request(self.metrics, record, ctx.rejection_counted)
            log_access(record)
        except Exception:  # observing must never break answering
            logger.exception("recording request %s failed", record.request_id)
