"""The raw HTTP client and the open-loop generator against a tiny asyncio HTTP server."""

from __future__ import annotations

import asyncio

from fusionserve.bench.loadgen import run_load
from fusionserve.bench.open_loop import run_open_loop

BODY = b'{"timing_ms":{"queue":1,"preprocess":2,"inference":3,"total":6}}'


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    served = 0
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        length = next(
            (int(x.split(b":")[1]) for x in head.split(b"\r\n") if x.startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)
        served += 1
        close = served % 3 == 0  # the client must reopen after a Connection: close
        status = b"200 OK" if b"/ok" in head else b"404 Not Found"
        extra = b"connection: close\r\n" if close else b""
        head = b"content-type: application/json\r\ncontent-length: %d\r\n" % len(BODY)
        writer.write(b"HTTP/1.1 " + status + b"\r\n" + head + extra + b"\r\n" + BODY)
        await writer.drain()
        if close:
            break
    writer.close()


async def _both() -> tuple:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bodies = [(b"x" * 100, "application/octet-stream")]
    async with server:
        closed = await run_load(f"http://127.0.0.1:{port}/ok", bodies, 4, 20, 4)
        opened = await run_open_loop(f"http://127.0.0.1:{port}/ok", bodies, 400.0, 30)
        missing = await run_open_loop(f"http://127.0.0.1:{port}/no", bodies, 400.0, 5)
    return closed, opened, missing


def test_closed_and_open_loop_count_every_request() -> None:
    closed, opened, missing = asyncio.run(_both())
    assert (closed.ok, closed.failures, closed.server_phases_ms["total"]) == (20, {}, 6.0)
    assert (opened.ok, opened.failures, opened.requests) == (30, {}, 30)
    assert opened.p50 <= opened.p99 and opened.concurrency >= 1
    assert (missing.ok, missing.failures) == (0, {404: 5})
