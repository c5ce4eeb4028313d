"""Request ids and the per-request context that hooks deep in the serving path attach to.

The caller's `X-Request-ID` is kept when it is safe to log (short, no spaces or control
characters: it goes into every log line); otherwise a fresh one is made. The context lives in a
context variable, so a hook called inside `InferenceService.predict` (or a batch item's task,
which copies the request's context) can say which model answered without being passed the
request.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:@+=\-]{1,128}")
# Generated ids: a random per-process prefix and a counter, 32 hex characters. Unique without a
# system call per request (uuid4 reads os.urandom; under load it showed in the event loop's
# profile, issue 26); ids are for correlating log lines, not secrets.
_PREFIX = secrets.token_hex(8)
_SEQUENCE = itertools.count()


@dataclass
class RequestContext:
    """What the service learned about one HTTP request while answering it."""

    request_id: str
    models: set[str] = field(default_factory=set)
    # (model, reason) of each rejection noted while answering it (refused items); metrics
    # count them when the request is recorded
    rejections: list[tuple[str, str]] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The model label: the one model that answered, 'multiple', or '' when none did."""
        if len(self.models) == 1:
            return next(iter(self.models))
        return "multiple" if self.models else ""


_current: ContextVar[RequestContext | None] = ContextVar("fusionserve_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def accept_or_generate(raw: bytes | None) -> str:
    """The caller's id if it is safe to echo and log, else a new random one (32 hex chars)."""
    if raw is not None and _SAFE_ID.fullmatch(raw):
        return raw.decode("ascii")
    return f"{_PREFIX}{next(_SEQUENCE) & 0xFFFFFFFFFFFFFFFF:016x}"


@contextmanager
def bound(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make ctx the current request for the code (and the tasks it starts) inside the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
