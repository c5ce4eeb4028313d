"""HTTP bodies (JSON with base64, or multipart/form-data) → one validated `PredictInput`.

Parsing is done here rather than by FastAPI's body injection so both content types share one
route, and so every failure maps to a specific error code (invalid_utf8, invalid_base64, ...)
instead of a generic 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from app.errors import (
    InvalidBase64,
    InvalidJson,
    InvalidRequest,
    InvalidUtf8,
    MissingField,
    UnsupportedMediaType,
    validation_error,
)
from app.multipart import parse_form
from app.schemas import PredictRequest

MAX_FORM_FIELDS = 8


@dataclass(frozen=True)
class PredictInput:
    image: bytes
    text: str
    model: str | None
    role: str | None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def decode_base64_image(value: str) -> bytes:
    """Standard or URL-safe base64, whitespace and a `data:...;base64,` prefix tolerated."""
    if value.startswith("data:"):
        value = value.partition(",")[2]
    compact = "".join(value.split()).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4) if len(compact) % 4 != 1 else ""
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64("`image` is not valid base64") from None


def parse_json_bytes(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUtf8("the JSON body is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise InvalidJson("the JSON body is nested too deeply") from None


def validate_item(data: Any, model: str | None = None, role: str | None = None) -> PredictInput:
    """A decoded JSON object → PredictInput; query/batch-level model/role are defaults."""
    try:
        item = PredictRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from None
    return PredictInput(
        image=decode_base64_image(item.image),
        text=item.text,
        model=item.model or model,
        role=item.role or role,
    )


async def read_predict_input(
    request: Request, max_body_bytes: int, model: str | None, role: str | None
) -> PredictInput:
    """Parse /predict's body; query-string model/role are defaults that body fields override."""
    kind = media_type(request)
    if kind == "application/json":
        return validate_item(parse_json_bytes(await request.body()), model, role)
    if kind == "multipart/form-data":
        fields = await parse_form(
            request.headers,
            await request.body(),
            max_files=1,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=max_body_bytes,
        )
        missing = [f for f in ("image", "text") if f not in fields]
        if missing:
            raise MissingField(f"missing form field(s): {', '.join(missing)}")
        image, text = fields["image"], fields["text"]
        if not isinstance(image, bytes):
            raise InvalidRequest("form field 'image' must be a file part (filename=...)")
        if not isinstance(text, str):
            raise InvalidRequest("form field 'text' must be a plain field, not a file")
        form_model, form_role = fields.get("model"), fields.get("role")
        return PredictInput(
            image=image,
            text=text,
            model=form_model if isinstance(form_model, str) and form_model else model,
            role=form_role if isinstance(form_role, str) and form_role else role,
        )
    raise UnsupportedMediaType(
        f"Content-Type {kind or '(none)'!r} is not accepted; "
        "use application/json or multipart/form-data"
    )
