"""Request headers that do not arrive within BODY_TIMEOUT_S: 408 and the connection closed.

The app runs only once a request's headers are complete, so a client trickling its headers, or
opening a connection and sending nothing, never reaches the ASGI layer (`app.body_deadline`
bounds the body there), and uvicorn has no timer for that phase: its keep-alive timer starts
only after a response. This is uvicorn's own protocol (httptools or h11, as `auto` picks) with
one timer, armed when a connection opens or a request's first byte arrives and disarmed once
its headers are complete. On expiry a partial request gets a 408; a silent connection is closed.
Closing is lingering (as nginx's): a socket closed while the client still sends (a 408 cut into
an upload) is reset, and the reset destroys the 408 before the client reads it. So a close first
half-closes (the answer, then FIN) and discards input until the client closes or LINGER_S pass.
`fusionserve serve` passes it to uvicorn as `http`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

# The mixin reads the protocol's state (cycle, loop, transport): typed as h11's, at runtime a
# plain mixin in front of either implementation.
if TYPE_CHECKING:
    _Base = H11Protocol
else:
    _Base = object

logger = logging.getLogger("fusionserve.deadline")

_BODY = json.dumps(
    {"error": {"code": "request_timeout", "message": "the request headers did not arrive in time"}}
).encode()
RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_BODY)
) + _BODY


LINGER_S = 2.0


class _LingeringClose:
    """The connection's transport, whose close() half-closes and lingers (see the module)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        if self._closing or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        self._closing = True
        transport.write_eof()  # after what is buffered: the answer arrives, then FIN
        transport.resume_reading()  # drain (discarded) until the client closes
        self._loop.call_later(LINGER_S, transport.close)


@functools.cache
def header_timeout_s() -> float:
    """BODY_TIMEOUT_S of this process (each uvicorn worker reads the environment once)."""
    from app.settings import Settings

    return Settings().body_timeout_s


class HeaderDeadline(_Base):
    timeout_s: float | None = None  # None: BODY_TIMEOUT_S from the environment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of a request whose headers are not complete yet

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        lingering = _LingeringClose(transport, self.loop)
        super().connection_made(lingering)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # lingering: the client's remaining bytes are not read as a request
        if self._between_requests():
            if self._header_timer is None:
                self._arm()
            self._partial = True
        super().data_received(data)
        if not self._between_requests():  # headers complete: the app's deadline takes over
            self._disarm()
            self._partial = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._timeout_s(), self._expired)

    def _timeout_s(self) -> float:
        return header_timeout_s() if self.timeout_s is None else self.timeout_s

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        if self._partial:
            logger.info("request headers incomplete after %.1fs: 408, closed", self._timeout_s())
            self.transport.write(RESPONSE_408)
        self.transport.close()


class H11HeaderDeadline(HeaderDeadline, H11Protocol):
    """h11 (the serve lock's only implementation)."""


HeaderDeadlineProtocol: type[HeaderDeadline]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: what uvicorn's `auto` would pick too
    HeaderDeadlineProtocol = H11HeaderDeadline
else:

    class HttpToolsHeaderDeadline(HeaderDeadline, HttpToolsProtocol):  # type: ignore[misc]
        """httptools, which uvicorn's `auto` prefers when it is installed."""

    HeaderDeadlineProtocol = HttpToolsHeaderDeadline
