"""Framework behaviour we rely on without a public API still works (app/framework_compat.py).

Each test fails naming the shim and the installed versions, so an upgrade that breaks one is
caught here, not in production.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import signal
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.datastructures import Headers
from starlette.types import Scope

from app.errors import InvalidUtf8
from app.framework_compat import (
    SigHandler,
    StrictMultiPartParser,
    live_gauge_pids,
    match_route,
    multiprocess_values,
)

VERSIONS = ", ".join(
    f"{n} {importlib.metadata.version(n)}"
    for n in ("starlette", "fastapi", "uvicorn", "prometheus_client")
)


def broken(what: str) -> str:
    return f"framework upgrade broke {what} [{VERSIONS}]; see app/framework_compat.py"


def test_strict_multipart_parser_rejects_invalid_utf8() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
        + b"\xff\xfe"
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    headers = Headers({"content-type": f"multipart/form-data; boundary={boundary}"})
    try:
        asyncio.run(StrictMultiPartParser(headers, stream()).parse())
    except InvalidUtf8:
        return
    except Exception as exc:
        pytest.fail(broken(f"StrictMultiPartParser ({type(exc).__name__}: {exc})"))
    pytest.fail(broken("StrictMultiPartParser: invalid UTF-8 form fields pass"))


def test_match_route_finds_a_route_of_an_included_router() -> None:
    router = APIRouter(prefix="/probe")

    @router.post("/{name}")
    async def endpoint(name: str) -> None: ...

    app = FastAPI()
    app.include_router(router)
    scope = {"type": "http", "method": "POST", "path": "/probe/x", "root_path": ""}
    found = match_route(scope, app.router.routes)
    assert getattr(found, "path", None) == "/probe/{name}", broken(f"match_route ({found!r})")


def test_prometheus_multiprocess_internals(tmp_path: Path) -> None:
    try:
        assert multiprocess_values() is False  # the tests run without PROMETHEUS_MULTIPROC_DIR
    except AttributeError as exc:
        pytest.fail(broken(f"multiprocess_values ({exc})"))
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").touch()
    assert live_gauge_pids(tmp_path) == {os.getpid()}, broken("live_gauge_pids")


def test_uvicorn_handles_sigterm_before_the_lifespan_starts() -> None:
    seen: list[SigHandler] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # lifespan.startup
            seen.append(signal.getsignal(signal.SIGTERM))
            server.should_exit = True
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await send({"type": "lifespan.shutdown.complete"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    before = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(server.serve())
    finally:
        signal.signal(signal.SIGTERM, before)
    handler = seen[0] if seen else None
    assert getattr(handler, "__self__", None) is server, broken(
        f"displace_sigterm: uvicorn's handler is not in place at lifespan startup ({handler!r})"
    )
