"""Wire OIP v2 into an app: reshape /v2 errors, and document them in the OpenAPI schema."""

from __future__ import annotations

from fastapi import FastAPI

from app.oip.errors import OipErrorShape, is_oip_path
from app.oip.schemas import InferRequest, OipError
from app.openapi_schema import Schema, Stage, add_schema_patch

ERROR_REF = {"$ref": f"#/components/schemas/{OipError.__name__}"}


def _document(schema: Schema) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (InferRequest, OipError):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    for path, operations in schema.get("paths", {}).items():
        if not is_oip_path(path):
            continue
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}


def install_oip(app: FastAPI) -> None:
    """Call last in create_app: the middleware must wrap every other layer."""
    app.add_middleware(OipErrorShape)
    add_schema_patch(app, Stage.PROTOCOL, _document)
