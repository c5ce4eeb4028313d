"""Liveness and readiness probes.

/health/live never touches a model: it answers 200 unless a model run has stalled for longer
than STALL_GRACE_S past its deadline (then 503 naming it: a stuck device does not come back by
itself, so the orchestrator should restart the process). /health/ready is 200
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


@router.get(
    "/live",
    response_model=Liveness,
    response_model_exclude_none=True,
    responses={503: {"model": Liveness, "description": "A model run stalled past its grace"}},
    summary="Process is alive (no model run stalled past its grace)",
)
async def live(registry: RegistryDep) -> JSONResponse:
    alive, reasons = registry.liveness()
    if alive:
        return JSONResponse(Liveness().model_dump(exclude_none=True))
    body = Liveness(status="stalled", reasons=reasons).model_dump()
    return JSONResponse(body, status_code=503)


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
