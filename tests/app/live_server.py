"""A real uvicorn server in a thread of the test process, serving an app the test holds.

For what only a real connection shows (a socket that closes mid-upload, the server's own log
records) while the test still reaches into the app (a gated model). `tests.app.servers` runs
`fusionserve serve` as a subprocess instead, for what needs a process of its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from app.header_deadline import HeaderDeadlineProtocol
from tests.app.servers import free_port


@contextmanager
def live_server(
    app: FastAPI,
    http: type[asyncio.Protocol] = HeaderDeadlineProtocol,
    ready_timeout_s: float = 60.0,
) -> Iterator[str]:
    """Yield the base URL once /health/ready answers 200; stop the server afterwards. `http`
    is the protocol class, as `fusionserve serve` passes it (app.header_deadline)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            assert thread.is_alive(), "the server thread ended before it was ready"
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def raw_connection(base: str) -> socket.socket:
    """A plain TCP connection to the server, for requests no HTTP client would send."""
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)
