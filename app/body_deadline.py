"""A body that does not arrive in time is answered 408 `request_timeout` and its connection closed.

Uvicorn has no body-read deadline: a client trickling a byte every few seconds held its
connection, a file descriptor and a request slot indefinitely, and 300 of them exhausted the
process. Each read of the body here waits at most until the earlier of BODY_TIMEOUT_S after the
headers, and the moment the body's average rate since the headers falls below BODY_MIN_RATE
(after MIN_RATE_GRACE_S, so a connection's slow start is not punished). Then the app's own
answer to the aborted read (FastAPI's parsing turns any read error into a 400) is dropped, and
this answers 408 with `Connection: close`, which makes the server close the connection.
Headers are bounded at the protocol level (`app.header_deadline`).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import RequestTimeout, answer_error

MIN_RATE_GRACE_S = 5.0


class BodyDeadline:
    def __init__(self, app: ASGIApp, timeout_s: float, min_rate: float) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.min_rate = min_rate  # bytes/s; 0 = no rate check

    def deadline(self, start: float, received: int) -> float:
        """Loop time by which the next chunk must have arrived."""
        until = start + self.timeout_s
        if self.min_rate > 0:
            until = min(until, start + MIN_RATE_GRACE_S + received / self.min_rate)
        return until

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = asyncio.get_running_loop().time()
        received = 0
        complete = started = False
        expired: RequestTimeout | None = None

        async def receive_in_time() -> Message:
            nonlocal received, complete, expired
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(self.deadline(start, received)):
                    message = await receive()
            except TimeoutError:
                expired = RequestTimeout(
                    f"the request body did not arrive within {self.timeout_s:g}s "
                    f"or at {self.min_rate:g} bytes/s",
                    {"Connection": "close"},
                )
                raise expired from None
            received += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_unless_expired(message: Message) -> None:
            nonlocal started
            if expired is None:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, receive_in_time, send_unless_expired)
        except Exception:
            if expired is None:
                raise
        if expired is not None and not started:
            await answer_error(scope, expired)(scope, receive, send)
