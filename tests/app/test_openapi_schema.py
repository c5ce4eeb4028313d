"""OpenAPI patches run in stage order, whatever order the layers were installed in."""

from __future__ import annotations

from fastapi import FastAPI

from app.openapi_schema import Schema, SchemaPatch, Stage, add_schema_patch


def test_patches_run_in_stage_order_not_install_order() -> None:
    app = FastAPI()
    seen: list[str] = []

    def patch(name: str) -> SchemaPatch:
        def run(schema: Schema) -> None:
            seen.append(name)
            schema.setdefault("x-order", []).append(name)

        return run

    add_schema_patch(app, Stage.PROTOCOL, patch("protocol"))
    add_schema_patch(app, Stage.COMPONENTS, patch("components"))
    add_schema_patch(app, Stage.SECURITY, patch("security"))
    assert app.openapi()["x-order"] == ["components", "security", "protocol"]
    app.openapi()
    assert seen == ["components", "security", "protocol"]  # built once
