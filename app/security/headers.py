"""Security headers on every response, set in one place.

The API returns JSON only, so its pages need no scripts, frames or referrers: a `default-src
'none'` CSP and `X-Frame-Options: DENY` make a response useless to an attacker who gets a
browser to load it. Predictions are medical data: `Cache-Control: no-store` keeps them out of
browser and proxy caches (set on every API response unless a route chose its own). HTML pages
(the demo page at /, /docs, /redoc) set their own CSP allowing only the app's own assets
(app/ui/csp.py); headers a route set are never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
API_ONLY = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


# (lower-case name, value) as ASGI carries them, encoded once
RAW_HEADERS = tuple(
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in (ALWAYS | API_ONLY).items()
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_defaults(message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_defaults(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus each of ours it did not set (one pass over its own, where
    MutableHeaders.setdefault scanned them once per header: issue 26's event-loop profile)."""
    present = [(name, value) for name, value in headers]
    names = {name.lower() for name, _ in present}
    return present + [pair for pair in RAW_HEADERS if pair[0] not in names]
