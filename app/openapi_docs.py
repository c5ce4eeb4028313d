"""OpenAPI pieces for routes that parse their own bodies: request bodies with examples for JSON
and multipart/form-data, shared error responses, and registering request schemas; and the
docs pages, served air-gapped (no CDN) under a CSP."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from app.openapi_schema import Schema, Stage, add_schema_patch
from app.schemas import BatchRequest, ErrorResponse, PredictRequest
from app.ui import csp
from app.ui.assets import AssetDir, files_in

# A real 8×8 grey PNG, so "Try it out" in /docs works as-is.
TINY_PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAEElEQVR42mOMYoAAJgaKGAAbfgBq+MZE2wAA"
    "AABJRU5ErkJggg=="
)
REQUEST_MODELS: tuple[type[BaseModel], ...] = (PredictRequest, BatchRequest)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _ref(PredictRequest),
                "examples": {
                    "medpix": {
                        "summary": "CT/MR slice + caption (image base64-encoded)",
                        "value": {
                            "image": TINY_PNG_BASE64,
                            "text": "1.6 x 1.8cm right middle lobe nodule.",
                            "model": "medpix",
                        },
                    },
                    "wound-teacher": {
                        "summary": "Wound photo + description, teacher model",
                        "value": {
                            "image": TINY_PNG_BASE64,
                            "text": "Small irregular opening; surrounding skin red and swollen.",
                            "model": "wound",
                            "role": "teacher",
                        },
                    },
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "text"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "text": {"type": "string"},
                        "model": {"type": "string"},
                        "role": {"type": "string", "enum": ["student", "teacher"]},
                    },
                },
                "example": {"text": "1.6 x 1.8cm right middle lobe nodule.", "model": "medpix"},
            },
        },
    }
}

BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _ref(BatchRequest),
                "example": {
                    "model": "medpix",
                    "items": [
                        {"image": TINY_PNG_BASE64, "text": "Axial CT of the chest."},
                        {"image": TINY_PNG_BASE64, "text": "", "role": "teacher"},
                    ],
                },
            }
        },
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": "Error"} for s in statuses}


def _add_request_models(schema: Schema) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in REQUEST_MODELS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema


def install_openapi(app: FastAPI) -> None:
    """Add the request schemas that hand-parsed routes reference to components; the docs."""
    add_schema_patch(app, Stage.COMPONENTS, _add_request_models)
    install_offline_docs(app)


def _swagger_page(title: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="icon" href="docs/assets/favicon.png">
<link rel="stylesheet" href="docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="openapi.json"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/swagger-init.js"></script></body></html>"""


def _redoc_page(title: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<link rel="icon" href="docs/assets/favicon.png"></head>
<body><redoc spec-url="openapi.json"></redoc>
<script src="docs/assets/redoc.standalone.js"></script></body></html>"""


def install_offline_docs(app: FastAPI) -> None:
    """/docs and /redoc with every asset served by the app (Swagger UI and ReDoc from the
    fastapi-offline package, no CDN) and a CSP allowing only those assets; the app must be
    created with docs_url=None and redoc_url=None. Relative URLs keep a proxy's prefix."""
    offline = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    assets = AssetDir(
        files_in(
            offline, "swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"
        )
        | files_in(Path(__file__).parent / "ui" / "static", "swagger-init.js")
    )
    pages = {
        "/docs": (_swagger_page(app.title), csp.SWAGGER),
        "/redoc": (_redoc_page(app.title), csp.REDOC),
    }

    def add_page(path: str, html: str, policy: str) -> None:
        async def page() -> HTMLResponse:
            return HTMLResponse(html, headers={"Content-Security-Policy": policy})

        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    for path, (html, policy) in pages.items():
        add_page(path, html, policy)

    async def docs_asset(request: Request, name: str) -> Response:
        return assets.response(request, name)

    app.add_api_route("/docs/assets/{name}", docs_asset, methods=["GET"], include_in_schema=False)
