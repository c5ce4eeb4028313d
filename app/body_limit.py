"""Request-body size limit as pure ASGI middleware.

Checked twice: from Content-Length before reading anything, and by counting bytes as they
stream in, so a chunked (or lying) body is cut off at the limit instead of being buffered whole.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadRequest, BodyTooLarge, ServiceError, answer_error


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        early: ServiceError | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                early = BadRequest("Content-Length is not an integer")
            else:
                if length > self.max_bytes:
                    early = self._too_large()
        if early is not None:
            await answer_error(scope, early)(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
