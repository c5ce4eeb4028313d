"""CORS: off unless CORS_ORIGINS lists the browser origins allowed to call the API.

Off by default because the API serves machines (and a same-origin /docs); a browser front end
on another origin is opted in explicitly. `*` allows any origin. Credentials (cookies) are never
allowed: the API key travels in a header that the preflight must permit.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.settings import Settings

ALLOWED_METHODS = ["GET", "POST"]
ALLOWED_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"]
EXPOSED_HEADERS = ["Retry-After", "Server-Timing", "X-Request-ID", "WWW-Authenticate"]
PREFLIGHT_MAX_AGE_S = 600


def install_cors(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
