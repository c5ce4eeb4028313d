"""POST /predict/batch — many items in one call; each succeeds or fails on its own.

Items are submitted concurrently, so the model's batcher groups them with other traffic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request

from app.contract.image import ImageDecodeError
from app.dependencies import ServiceDep
from app.errors import (
    InvalidRequest,
    ServiceError,
    TooManyItems,
    UnsupportedMediaType,
    as_service_error,
)
from app.inference import InferenceService
from app.inputs import media_type, parse_json_bytes, validate_item
from app.openapi_docs import BATCH_BODY, error_responses
from app.routes.predict import ModelQuery, RoleQuery, to_response
from app.schemas import BatchItemResult, BatchResponse, ErrorDetail

logger = logging.getLogger("fusionserve.routes.batch")
router = APIRouter(tags=["predict"])
BATCH_KEYS = {"items", "model", "role"}


def _optional_str(data: dict[str, Any], key: str, fallback: str | None) -> str | None:
    value = data.get(key)
    if value is None:
        return fallback
    if not isinstance(value, str):
        raise InvalidRequest(f"{key}: must be a string")
    return value


async def _one(
    service: InferenceService, index: int, raw: Any, model: str | None, role: str | None
) -> BatchItemResult:
    try:
        item = validate_item(raw, model, role)
    except ServiceError as err:
        # Refused before reaching the serving path, so count the rejection here.
        service.hooks.item_failed("", err.code, err.status)
        return _failed(index, err)
    try:
        result = await service.predict(item.image, item.text, item.model, item.role)
        return BatchItemResult(index=index, status=200, result=to_response(result))
    except Exception as exc:
        if not isinstance(exc, ServiceError | ImageDecodeError):  # a client error is not news
            logger.exception("batch item %d failed unexpectedly", index)
        return _failed(index, as_service_error(exc))


def _failed(index: int, err: ServiceError) -> BatchItemResult:
    return BatchItemResult(
        index=index, status=err.status, error=ErrorDetail(code=err.code, message=err.message)
    )


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 413, 415, 422),
    openapi_extra=BATCH_BODY,
    summary="Predict many items; per-item status and error",
)
async def predict_batch(
    request: Request, service: ServiceDep, model: ModelQuery = None, role: RoleQuery = None
) -> BatchResponse:
    if media_type(request) != "application/json":
        raise UnsupportedMediaType("/predict/batch accepts application/json only")
    data = parse_json_bytes(await request.body())
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InvalidRequest("the body must be an object with an `items` list")
    if unknown := sorted(set(data) - BATCH_KEYS):
        raise InvalidRequest(f"unknown field(s): {unknown}")
    items = data["items"]
    limit = service.settings.max_batch_items
    if not items:
        raise InvalidRequest("items: must not be empty")
    if len(items) > limit:
        raise TooManyItems(f"{len(items)} items; the limit is {limit} (MAX_BATCH_ITEMS)")
    default_model = _optional_str(data, "model", model)
    default_role = _optional_str(data, "role", role)
    results = await asyncio.gather(
        *(_one(service, i, raw, default_model, default_role) for i, raw in enumerate(items))
    )
    return BatchResponse(results=list(results))
