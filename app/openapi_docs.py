"""OpenAPI pieces for routes that parse their own bodies: request bodies with examples for JSON
and multipart/form-data, shared error responses, and registering request schemas."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.schemas import BatchRequest, ErrorResponse, PredictRequest

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


def install_openapi(app: FastAPI) -> None:
    """Add the request schemas that hand-parsed routes reference to components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in REQUEST_MODELS:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
