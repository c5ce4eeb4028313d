"""Slow clients on either HTTP implementation (h11, the serve lock's; httptools, uvicorn's choice
when installed): a client trickling its headers gets a 408 and is closed within
BODY_TIMEOUT_S + 5 s, so does one trickling its body, one that connects and says nothing is
closed, and a keep-alive connection still serves request after request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from app.header_deadline import H11HeaderDeadline, HeaderDeadline, HeaderDeadlineProtocol
from app.main import create_app
from tests.app.helpers import tiny_settings
from tests.app.live_server import live_server

TIMEOUT_S = 1.5
TIMED_OUT = b"HTTP/1.1 408 Request Timeout"


class ShortH11(H11HeaderDeadline):
    timeout_s = TIMEOUT_S


class ShortAuto(HeaderDeadlineProtocol):  # type: ignore[valid-type,misc]
    timeout_s = TIMEOUT_S


PROTOCOLS = [ShortH11] + ([ShortAuto] if HeaderDeadlineProtocol is not H11HeaderDeadline else [])


async def drip(port: int, head: bytes, drop: bytes) -> tuple[float, bytes]:
    """`head`, then `drop` every 0.3 s until the server closes: (seconds, first line)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    start = time.monotonic()
    answer = asyncio.create_task(reader.read())  # everything, until the server closes
    try:
        while not answer.done():
            await asyncio.wait({answer}, timeout=0.3)
            if not answer.done():
                writer.write(drop)
        return time.monotonic() - start, answer.result().split(b"\r\n", 1)[0]
    finally:
        writer.close()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__mro__[1].__name__)
def test_slow_clients_are_closed(tiny_bundle_dir: Path, protocol: type[HeaderDeadline]) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], body_timeout_s=TIMEOUT_S)
    app = create_app(settings)
    with live_server(app, http=protocol) as base:
        port = int(base.rsplit(":", 1)[1])
        slow_head = b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Slow: "
        slow_body = (
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )

        async def clients() -> list[tuple[float, bytes]]:
            heads = [drip(port, slow_head, b"a") for _ in range(5)]
            bodies = [drip(port, slow_body, b" ") for _ in range(5)]
            return list(await asyncio.gather(drip(port, b"", b""), *heads, *bodies))

        (silent_s, silent_line), *slow = asyncio.run(clients())
        with httpx.Client(base_url=base) as client:  # one keep-alive connection
            codes = [client.get("/health/live").status_code for _ in range(3)]
    assert [line for _, line in slow] == [TIMED_OUT] * 10
    assert all(TIMEOUT_S - 0.2 <= seconds <= TIMEOUT_S + 5 for seconds, _ in slow), slow
    assert silent_line == b"" and silent_s <= TIMEOUT_S + 5  # nothing asked, nothing answered
    assert codes == [200, 200, 200]
