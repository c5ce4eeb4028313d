"""Every use of framework behaviour that is not public API, in one place.

Each shim names what it relies on and why no public API does the job.
tests/app/test_framework_compat.py exercises every one against the installed versions and fails
naming the shim and the versions, so an upgrade that breaks one is caught by CI, not in
production.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import values
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
