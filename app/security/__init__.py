"""Exposure controls: optional API key, CORS, security headers.

`install_security` adds them innermost-first, so the headers land on every answer (401s and
CORS preflights included) and a CORS preflight is answered before the key is checked.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.security.auth import install_auth
from app.security.cors import install_cors
from app.security.headers import SecurityHeaders
from app.settings import Settings


def install_security(app: FastAPI, settings: Settings) -> None:
    install_auth(app, settings)
    install_cors(app, settings)
    app.add_middleware(SecurityHeaders)


__all__ = ["install_security"]
