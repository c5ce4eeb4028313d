"""Liveness and readiness probes.

/health/live never touches a model (the process answers, so it is alive). /health/ready is 200
only when loading finished, every configured model passed its warm-up and its batcher runs, and
the server is not draining; otherwise 503 with the service's state, the reasons and per-model
detail.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.dependencies import RegistryDep
from app.schemas import Liveness, ModelReadiness, Readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Liveness, summary="Process is alive")
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready (loading, failed, draining)"}},
    summary="Every model loaded, warmed up and batching; not draining",
)
async def ready(registry: RegistryDep) -> JSONResponse:
    ok, reasons = registry.readiness()
    lifecycle = registry.lifecycle
    body = Readiness(
        status="ready" if ok else "not_ready",
        state=lifecycle.state,
        draining=lifecycle.shutting_down,
        reasons=reasons,
        models={
            name: ModelReadiness(ready=m.ready, state=m.state.value, reason=m.status_reason)
            for name, m in registry.models.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)
