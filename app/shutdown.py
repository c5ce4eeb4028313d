"""Graceful shutdown: SIGTERM → not ready at once → every in-flight request answered → exit.

uvicorn's own SIGTERM handling closes the listening socket first, so a readiness probe could no
longer be answered and load balancers would only learn of the shutdown from refused connections.
We hook SIGTERM in front of it, for the app's lifetime:

1. SIGTERM: `/health/ready` answers 503 (`draining: true`) immediately; responses carry
   `Connection: close` so keep-alive clients reconnect (to another replica). The listener stays
   open and **every request is still served** — refusing new work would turn requests a load
   balancer routed before it saw the 503 into errors, while serving them loses nothing.
2. When no request is in flight (at most DRAIN_TIMEOUT_S / 2 after SIGTERM), SIGTERM is handed
   to uvicorn's handler: it stops listening, finishes open connections, and the app's lifespan
   drains the batchers. A request that still reaches the app once that shutdown has begun gets
   503 `draining` (with Retry-After) instead of a model that is no longer there.
3. Hard bound: if the process is still alive DRAIN_TIMEOUT_S after SIGTERM, it exits (status 1).

A second SIGTERM skips phase 1's wait. Signals can only be hooked from the main thread; in-process
test clients run the app elsewhere and simply get no hook. The state (draining, stopping) is the
service's one `Lifecycle`; how the hook sits in front of uvicorn's is `app.framework_compat`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Draining, answer_error
from app.framework_compat import SigHandler, displace_sigterm, pass_sigterm, restore_sigterm
from app.lifecycle import Lifecycle

logger = logging.getLogger("fusionserve.shutdown")

POLL_S = 0.02
FORCED_EXIT_STATUS = 1


def _is_probe(path: str) -> bool:
    return path.startswith(("/health/", "/v2/health/"))


class GracefulDrain:
    """One app's drain: requests in flight, when SIGTERM came, handing it on, the hard bound.
    Whether the service is draining or stopping is its `lifecycle`'s."""

    def __init__(self, lifecycle: Lifecycle, timeout_s: float) -> None:
        self.lifecycle = lifecycle
        self.timeout_s = timeout_s
        self.in_flight = 0  # requests being answered, probes excluded
        self.signalled_at = 0.0  # time.monotonic() of the first SIGTERM
        self._previous: SigHandler = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._watchdog: threading.Timer | None = None
        self._handed_over = False

    @property
    def draining(self) -> bool:
        return self.lifecycle.shutting_down

    # -- the signal hook ---------------------------------------------------------------------

    @contextlib.contextmanager
    def sigterm_hook(self) -> Iterator[None]:
        """Put our SIGTERM handler in front of the current one (uvicorn's) while the app runs."""
        installed = threading.current_thread() is threading.main_thread()
        if installed:
            self._loop = asyncio.get_running_loop()
            self._previous = displace_sigterm(self._on_sigterm)
        try:
            yield
        finally:
            if installed:
                restore_sigterm(self._on_sigterm, self._previous)
            if self._watchdog is not None:
                self._watchdog.cancel()  # shutdown finished in time
            if self._task is not None and not self._task.done():
                self._task.cancel()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of the event loop: only set flags and
        # hand the rest to the loop.
        if self.draining:
            self._hand_over(signum)  # a second SIGTERM: stop waiting for in-flight requests
            return
        self.signalled_at = time.monotonic()
        self.lifecycle.drain()  # /health/ready → 503 from now on
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._start, signum)

    def _start(self, signum: int) -> None:
        logger.info(
            "SIGTERM: draining (%d request(s) in flight, timeout %.1fs)",
            self.in_flight,
            self.timeout_s,
        )
        if self.timeout_s > 0:  # 0: no drain and no bound, uvicorn's own shutdown only
            self._watchdog = threading.Timer(self.timeout_s, self._force_exit)
            self._watchdog.daemon = True
            self._watchdog.start()
        self._task = asyncio.get_running_loop().create_task(self._drain(signum), name="drain")

    async def _drain(self, signum: int) -> None:
        listen_until = self.signalled_at + self.timeout_s / 2
        while self.in_flight > 0 and time.monotonic() < listen_until:
            await asyncio.sleep(POLL_S)
        if self.in_flight:
            logger.warning("drain: %d request(s) still in flight; stop listening", self.in_flight)
        self._hand_over(signum)

    def _hand_over(self, signum: int) -> None:
        """Pass the signal to the handler we displaced (uvicorn: stop listening, shut down)."""
        if self._handed_over:
            return
        self._handed_over = True
        pass_sigterm(self._previous, signum)

    def _force_exit(self) -> None:
        logger.error(
            "drain timeout %.1fs passed with %d request(s) in flight; exiting",
            self.timeout_s,
            self.in_flight,
        )
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(FORCED_EXIT_STATUS)


class DrainGate:
    """Counts requests in flight; while draining adds `Connection: close`; once the app is
    stopping answers new non-probe requests 503 `draining` with Retry-After."""

    def __init__(self, app: ASGIApp, drain: GracefulDrain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_probe(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if self.drain.lifecycle.stopping:
            err = Draining(
                "the server is shutting down; retry (another replica)",
                {"Retry-After": "1", "Connection": "close"},
            )
            await answer_error(scope, err)(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send_closing)
        finally:
            self.drain.in_flight -= 1


def install_drain(app: FastAPI, drain: GracefulDrain) -> None:
    """The drain gate for this app (the lifespan runs `drain.sigterm_hook`, app.main);
    `app.state.drain` exposes its in-flight count."""
    app.state.drain = drain
    app.add_middleware(DrainGate, drain=drain)
