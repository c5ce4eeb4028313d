"""Security headers on every response, set in one place.

The API returns JSON only, so its pages need no scripts, frames or referrers: a `default-src
'none'` CSP and `X-Frame-Options: DENY` make a response useless to an attacker who gets a
browser to load it. Predictions are medical data: `Cache-Control: no-store` keeps them out of
browser and proxy caches (set on every API response unless a route chose its own). HTML pages
(the demo page at /, /docs, /redoc) set their own CSP allowing only the app's own assets
(app/ui/csp.py); headers a route set are never overwritten.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
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


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = ALWAYS | API_ONLY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
