"""POST /predict — one image + text, as JSON (base64 image) or multipart/form-data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.dependencies import ServiceDep
from app.inference import PredictionResult
from app.inputs import read_predict_input
from app.openapi_docs import PREDICT_BODY, error_responses
from app.postprocess import Prediction
from app.schemas import (
    DomainOut,
    DomainSideOut,
    ModalityWeights,
    ModelIdentity,
    PredictResponse,
    TaskPredictionOut,
    TimingMs,
)
from app.timing import PhaseTimings

router = APIRouter(tags=["predict"])

ModelQuery = Annotated[
    str | None, Query(description="Bundle name or task set; a body field of the same name wins.")
]
RoleQuery = Annotated[
    str | None,
    Query(
        description="`student` (default) or `teacher`.",
        json_schema_extra={"enum": ["student", "teacher"]},
    ),
]


def to_response(result: PredictionResult) -> PredictResponse:
    manifest = result.model.manifest
    prediction = result.prediction
    weights = prediction.modality_weights
    return PredictResponse(
        model=ModelIdentity(
            name=result.model.name,
            task_set=manifest.task_set,
            role=manifest.role,
            fusion=manifest.fusion,
            version=manifest.version,
        ),
        predictions={
            name: TaskPredictionOut(
                label=p.label,
                probability=p.probability,
                probabilities=p.probabilities,
                low_confidence=p.low_confidence,
            )
            for name, p in prediction.tasks.items()
        },
        modality_weights=ModalityWeights(**weights) if weights else None,
        domain=_domain(prediction),
        timing_ms=TimingMs(**result.timings.as_ms()),
    )


def _domain(prediction: Prediction) -> DomainOut | None:
    if prediction.domain is None:
        return None
    sides = {
        side: DomainSideOut(in_domain=d.in_domain, score=round(d.score, 4))
        for side, d in prediction.domain.items()
    }
    return DomainOut(**sides)


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 415, 422, 429, 500, 503, 504),
    openapi_extra=PREDICT_BODY,
    summary="Predict both tasks for one image + text",
)
async def predict(
    request: Request, service: ServiceDep, model: ModelQuery = None, role: RoleQuery = None
) -> PredictResponse:
    timings = PhaseTimings()
    request.state.timings = timings  # for Server-Timing / access-log layers
    item = await read_predict_input(request, service.settings.max_body_bytes, model, role)
    result = await service.predict(item.image, item.text, item.model, item.role, timings)
    return to_response(result)
