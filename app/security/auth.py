"""Optional API key: when API_KEY is set, every route needs it except the open ones.

Deny by default: a route added later is protected without anyone remembering to protect it.
Open: the docs, the demo page (it asks for the key itself), their static files and the OpenAPI
schema (the public contract, no data), /health/* and /v2/health/*
(probes) and /metrics (scrapers) unless AUTH_PROTECT_HEALTH / AUTH_PROTECT_METRICS say
otherwise. The key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>` (when both are
sent, both must be right); it is compared in constant time over sha256 digests, so neither its
content nor its length leaks through timing. The key is never logged.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unauthorized, answer_error
from app.openapi_schema import Schema, Stage, add_schema_patch
from app.settings import Settings

DOCS_PATHS = frozenset({"/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/ui/", "/docs/assets/")  # the demo page's and the docs' static files
REALM = 'Bearer realm="fusionserve"'
BEARER_SCHEME = "bearerAuth"
HEADER_SCHEME = "apiKeyHeader"


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class PathPolicy:
    """Which paths need the key."""

    def __init__(self, protect_health: bool, protect_metrics: bool) -> None:
        self.protect_health = protect_health
        self.protect_metrics = protect_metrics

    def is_open(self, path: str) -> bool:
        if path in DOCS_PATHS or path.startswith(OPEN_PREFIXES):
            return True
        if path == "/health" or path.startswith(("/health/", "/v2/health/")):
            return not self.protect_health
        if path == "/metrics":
            return not self.protect_metrics
        return False


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Every credential the request carries. A malformed one (another Authorization scheme, an
    empty token) counts as a wrong key (b""), so it cannot be outvoted by a right one."""
    keys = []
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            keys.append(token.strip() if scheme.lower() == b"bearer" else b"")
        elif name == b"x-api-key":
            keys.append(value.strip())
    return keys


class ApiKeyAuth:
    """Pure ASGI middleware: 401 `unauthorized` with WWW-Authenticate, before any body is read."""

    def __init__(self, app: ASGIApp, api_key: str, policy: PathPolicy) -> None:
        self.app = app
        self._expected = _digest(api_key.encode("utf-8"))
        self.policy = policy

    def accepts(self, keys: list[bytes]) -> bool:
        """At least one key, and every key presented is right: conflicting credentials (a bad
        Bearer token next to a good X-API-Key) are refused, not resolved in the caller's favour.
        Every key is compared, so the time spent does not depend on which one is wrong."""
        matches = [hmac.compare_digest(_digest(key), self._expected) for key in keys]
        return bool(matches) and all(matches)  # b"" never matches: an empty API_KEY is "off"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.policy.is_open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        keys = presented_keys(list(scope.get("headers") or []))
        if self.accepts(keys):
            await self.app(scope, receive, send)
            return
        if keys:
            err = Unauthorized(
                "the API key is not valid",
                {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        else:
            err = Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                {"WWW-Authenticate": REALM},
            )
        await answer_error(scope, err)(scope, receive, send)


def document_api_key(app: FastAPI, policy: PathPolicy) -> None:
    """Declare both key schemes and the 401 answer on protected operations in OpenAPI."""

    def patch(schema: Schema) -> None:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer"}
        schemes[HEADER_SCHEME] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        for path, operations in schema.get("paths", {}).items():
            if policy.is_open(path):
                continue
            for operation in operations.values():
                operation["security"] = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
                operation.setdefault("responses", {})["401"] = {
                    "description": "Missing or invalid API key",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                        }
                    },
                }

    add_schema_patch(app, Stage.SECURITY, patch)


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Protect the app when API_KEY is set; no-op otherwise."""
    if settings.api_key is None:
        return
    policy = PathPolicy(settings.auth_protect_health, settings.auth_protect_metrics)
    app.add_middleware(ApiKeyAuth, api_key=settings.api_key.get_secret_value(), policy=policy)
    document_api_key(app, policy)
