"""A client that closes its connection before its answer is not a server error.

Mid-upload, Starlette raises `ClientDisconnect` (FastAPI-parsed bodies turn it into a 400);
after the upload, nothing noticed and the item kept its place in the batcher. Either way the
answer goes nowhere. This middleware, innermost, sees the `http.disconnect` itself: while the
body streams in (the app's own read), and after it (a watcher reading the next message), where
it cancels the request's work so the batcher skips the item. It then answers 499 `client_closed`
in place of whatever the app did, so metrics and the one access line count the request under
its own status, outside 5xx, and nothing logs a trace.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ClientClosed, answer_error


class ClientClosedGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        gone = started = cancelled = returned = False
        watcher: asyncio.Task[Message] | None = None

        async def watch() -> Message:
            """The message after the body: `http.disconnect` when the client leaves, or once
            the response is complete (uvicorn). Only the first means the client left early."""
            nonlocal gone, cancelled
            message = await receive()
            if message["type"] == "http.disconnect" and not (started or returned):
                gone = cancelled = True
                task.cancel()
            return message

        async def watched_receive() -> Message:
            nonlocal gone, watcher
            if watcher is not None:  # the body is read: the watcher owns receive
                return await asyncio.shield(watcher)
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            elif not message.get("more_body", False):
                watcher = asyncio.create_task(watch(), name="client-closed-watch")
                watcher.add_done_callback(_retrieve)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if gone:
                return  # nobody reads it: the answer is ours (499)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, watched_receive, guarded_send)
        except asyncio.CancelledError:
            if not cancelled:
                raise
            cancelled = False
            if task.uncancel() > 0:
                raise  # not only ours: the server is stopping the request too
        except Exception:
            if not gone:
                raise
        finally:
            returned = True
            if watcher is not None:
                watcher.cancel()
        if cancelled:  # the app swallowed our cancellation: consume it
            task.uncancel()
        if gone and not started:
            error = ClientClosed("the client closed the connection before its answer")
            await answer_error(scope, error)(scope, receive, send)


def _retrieve(task: asyncio.Task[Message]) -> None:
    """A watcher that failed (its receive raised) is not worth a 'never retrieved' warning."""
    if not task.cancelled():
        task.exception()
