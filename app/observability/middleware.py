"""One pure-ASGI middleware around the whole app: request id, Server-Timing, metrics, access line.

Outermost of the app's own middlewares, so requests refused early (body too large) are timed,
counted and logged like the rest. It never reads a body's content: it counts bytes, and reads an
error's stable code from where `app.errors.answer_error` recorded it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import recorded_error_code
from app.framework_compat import match_route
from app.observability.access_log import log_access
from app.observability.metrics import ServiceMetrics
from app.observability.record import UNMATCHED_ROUTE, RequestRecord, is_traffic
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


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The matched route's template; for requests answered before routing, match it here."""
    route = scope.get("route") or match_route(scope, routes)
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
        state: dict[str, Any] = scope.setdefault("state", {})  # shared with inner layers
        traffic = is_traffic(scope.get("path", ""))
        start = time.perf_counter()
        status, bytes_in, bytes_out = 500, 0, 0
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
                error_code=recorded_error_code(scope),
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
                record_request(self.metrics, record, ctx.rejections)
            log_access(record)
        except Exception:  # observing must never break answering
            logger.exception("recording request %s failed", record.request_id)
