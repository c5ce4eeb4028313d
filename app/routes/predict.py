"""POST /predict — one image + text, as JSON (base64 image) or multipart/form-data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.answer import answer_dict, answer_json
from app.inference import InferenceService, PredictionResult
from app.inputs import read_predict_input
from app.lean_route import TextQueryRoute
from app.openapi_docs import PREDICT_BODY, error_responses
from app.schemas import PredictResponse
from app.timing import PhaseTimings

router = APIRouter(tags=["predict"], route_class=TextQueryRoute)  # no parameter solving

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
    """The answer as a validated model (for /predict/batch, whose items nest it)."""
    return PredictResponse.model_validate(answer_dict(result))


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 415, 422, 429, 500, 503, 504),
    openapi_extra=PREDICT_BODY,
    summary="Predict both tasks for one image + text",
)
async def predict(request: Request, model: ModelQuery = None, role: RoleQuery = None) -> Response:
    # Read here, not as a `ServiceDep` dependency: that cost a nested dependency solve on the
    # event loop per request for one attribute lookup (issue 26); the schema is the same.
    service: InferenceService = request.app.state.service
    timings = PhaseTimings()
    request.state.timings = timings  # for Server-Timing / access-log layers
    item = await read_predict_input(request, service.settings.max_body_bytes, model, role)
    result = await service.predict(item.image, item.text, item.model, item.role, timings)
    return Response(answer_json(result), media_type="application/json")  # see app.answer
