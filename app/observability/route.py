"""GET /metrics: Prometheus text exposition (not counted as traffic, not in the OpenAPI schema)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.observability.multiprocess import exposition

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    observability = request.app.state.observability
    body = exposition(observability.registry, observability.multiproc_dir)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
