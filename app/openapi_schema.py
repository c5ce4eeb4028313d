"""The app's OpenAPI schema: FastAPI's, then every registered patch in a fixed stage order.

Layers (request schemas, API-key security, OIP error shapes) register patches in whatever order
they are installed; the stages say the order they run in, here and only here. The schema is
built once, on first request, so patches need no idempotency checks.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

Schema = dict[str, Any]
SchemaPatch = Callable[[Schema], None]


class Stage(IntEnum):
    COMPONENTS = 0  # schemas that hand-parsed routes reference
    SECURITY = 1  # security schemes and the 401 they add to protected operations
    PROTOCOL = 2  # protocol-specific error shapes: last, so they also reshape those 401s


class SchemaBuilder:
    """Replaces `FastAPI.openapi` (its documented extension point) for one app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.patches: list[tuple[Stage, SchemaPatch]] = []

    def __call__(self) -> Schema:
        app = self.app
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for _, patch in sorted(self.patches, key=lambda p: p[0]):  # stable within a stage
                patch(schema)
            app.openapi_schema = schema
        return app.openapi_schema


def add_schema_patch(app: FastAPI, stage: Stage, patch: SchemaPatch) -> None:
    """Run `patch` on the schema at `stage`; the builder is installed on first use."""
    builder = app.openapi
    if not isinstance(builder, SchemaBuilder):
        builder = SchemaBuilder(app)
        app.openapi = builder  # type: ignore[method-assign]
    builder.patches.append((stage, patch))
    app.openapi_schema = None
