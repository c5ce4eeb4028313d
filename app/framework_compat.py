"""Every use of framework behaviour that is not public API, in one place.

Each shim names what it relies on and why no public API does the job. `problems()` exercises
them all against the installed versions; tests/app/test_framework_compat.py fails with its
messages, so an upgrade that breaks one is caught by CI, not in production.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import signal
import tempfile
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import values
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartParser
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.errors import InvalidUtf8

SigHandler = Callable[[int, FrameType | None], Any] | int | None

# -- starlette: strict UTF-8 form fields ----------------------------------------------------


class StrictMultiPartParser(MultiPartParser):
    """Starlette's parser decodes invalid UTF-8 fields as latin-1; we reject them instead.

    The public `Request.form()` cannot tell a latin-1 fallback from valid text, so this hooks
    the parser's part callback and reads its private `_current_part` and `_charset`.
    """

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None and self._charset in ("utf-8", "utf_8"):
            try:
                bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidUtf8(f"form field {part.field_name!r} is not valid UTF-8") from None
        super().on_part_end()


# -- fastapi: matching a route before routing -----------------------------------------------


def match_route(scope: Scope, routes: Sequence[BaseRoute], depth: int = 0) -> BaseRoute | None:
    """The route a request would reach, for requests answered before routing (413, 401, 503).

    Recent FastAPI keeps each included router as one private `_IncludedRouter` entry whose
    routes are under `original_router`; older versions copied the routes (no such attribute).
    No public API lists the effective routes, so we descend through it.
    """
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is not Match.FULL:
            continue
        inner = getattr(candidate, "original_router", None)
        if inner is None:
            return candidate
        if depth < 4 and (found := match_route(scope, inner.routes, depth + 1)) is not None:
            return found
    return None


# -- prometheus_client: multiprocess mode ---------------------------------------------------


def multiprocess_values() -> bool:
    """Whether prometheus_client chose file-backed values at import (it reads the variable only
    then; `values.ValueClass` is the undocumented switch it set)."""
    return values.ValueClass is not values.MutexValue


def live_gauge_pids(path: Path) -> set[int]:
    """Pids with live-gauge files (`gauge_live<mode>_<pid>.db`, prometheus_client's private file
    naming): `mark_process_dead` is public but needs the pids, and nothing lists them."""
    pids = set()
    for file in path.glob("gauge_live*_*.db"):
        pid_text = file.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit():
            pids.add(int(pid_text))
    return pids


# -- uvicorn: SIGTERM in front of the server's own handler ----------------------------------


def displace_sigterm(handler: Callable[[int, FrameType | None], Any]) -> SigHandler:
    """Install `handler` for SIGTERM; return the one it displaced (uvicorn's `handle_exit`).

    Relies on uvicorn installing its handler with `signal.signal` *before* the app's lifespan
    starts (`Server.capture_signals` around `Server._serve`), so the lifespan can put ours in
    front and later pass the signal on. Subclassing `uvicorn.Server` to override `handle_exit`
    is not an alternative: it would only cover `fusionserve serve` (not `uvicorn --factory` or
    gunicorn workers), `handle_exit` is undocumented too, and with several workers it means
    re-implementing `uvicorn.run`'s supervisor wiring.
    """
    return signal.signal(signal.SIGTERM, handler)


def restore_sigterm(ours: Callable[[int, FrameType | None], Any], previous: SigHandler) -> None:
    """Put the displaced handler back, unless someone replaced ours meanwhile."""
    if signal.getsignal(signal.SIGTERM) == ours:
        signal.signal(signal.SIGTERM, previous)


def pass_sigterm(previous: SigHandler, signum: int) -> None:
    """Hand the signal to the displaced handler (uvicorn: stop listening, shut down)."""
    if callable(previous):
        previous(signum, None)
    elif previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


# -- the check ------------------------------------------------------------------------------


def _versions() -> str:
    names = ("starlette", "fastapi", "uvicorn", "prometheus_client")
    return ", ".join(f"{n} {importlib.metadata.version(n)}" for n in names)


async def _multipart_problem() -> str | None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
        + b"\xff\xfe"
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    headers = Headers({"content-type": f"multipart/form-data; boundary={boundary}"})
    parser = StrictMultiPartParser(headers, stream())
    try:
        await parser.parse()
    except InvalidUtf8:
        return None
    except Exception as exc:
        return f"StrictMultiPartParser broke: {type(exc).__name__}: {exc}"
    return "StrictMultiPartParser no longer rejects invalid UTF-8 form fields"


def _route_problem() -> str | None:
    from fastapi import APIRouter, FastAPI

    router = APIRouter(prefix="/probe")

    @router.post("/{name}")
    async def endpoint(name: str) -> None: ...

    app = FastAPI()
    app.include_router(router)
    scope = {"type": "http", "method": "POST", "path": "/probe/x", "root_path": ""}
    found = match_route(scope, app.router.routes)
    if getattr(found, "path", None) != "/probe/{name}":
        return f"match_route found {found!r}, not the included route /probe/{{name}}"
    return None


def _prometheus_problem() -> str | None:
    if not hasattr(values, "ValueClass") or not hasattr(values, "MutexValue"):
        return "prometheus_client.values has no ValueClass/MutexValue (multiprocess_values)"
    with tempfile.TemporaryDirectory() as tmp:
        name = Path(tmp, f"gauge_livesum_{os.getpid()}.db")
        name.touch()
        if live_gauge_pids(Path(tmp)) != {os.getpid()}:
            return "live_gauge_pids cannot read prometheus_client's file names"
    return None


def _uvicorn_problem() -> str | None:
    import uvicorn

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
    if getattr(handler, "__self__", None) is not server:
        return f"uvicorn's SIGTERM handler is not installed before lifespan startup ({handler!r})"
    return None


def problems() -> list[str]:
    """What no longer works with the installed frameworks (main thread only: signals)."""
    found = [
        asyncio.run(_multipart_problem()),
        _route_problem(),
        _prometheus_problem(),
        _uvicorn_problem(),
    ]
    return [f"{p} [{_versions()}; see app/framework_compat.py]" for p in found if p]
