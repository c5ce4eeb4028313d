"""Unexpected exceptions from the routes: one log record with the trace, a 500 `internal_error`.

Starlette answers an `Exception` handler's error and then re-raises it to the server, so uvicorn
logged every one a second time (`uvicorn.error`, a second trace). This sits just outside the
routes, logs once (with the request id, from the logging filter), answers, and keeps the error
from reaching the server. Once a response has started it can only re-raise; uvicorn then logs it,
once, and closes the connection.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ServiceError, answer_error

logger = logging.getLogger("fusionserve.errors")


class UnhandledErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            route = getattr(scope.get("route"), "path", None) or "(unmatched route)"
            logger.exception("unhandled error on %s %s", scope.get("method", ""), route)
            await answer_error(scope, ServiceError("internal error"))(scope, receive, send)
