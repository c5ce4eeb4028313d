"""Open Inference Protocol v2 (REST): health, metadata, readiness and infer, on the same
`InferenceService` and batchers as /predict.

Each model route also answers under `/versions/{version}` (hidden from the OpenAPI schema; the
same handler). Items of one request are submitted concurrently, so the model's batcher runs
them together (with other traffic); one failed item fails the request, as the protocol has no
per-item status.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.dependencies import RegistryDep, ServiceDep
from app.inference import InferenceService, PredictionResult
from app.oip.metadata import EXTENSIONS, find_model, model_metadata
from app.oip.outputs import declared_outputs, output_tensors
from app.oip.request import read_infer
from app.oip.response import check_outputs, infer_response
from app.oip.schemas import InferRequest, Live, ModelMetadata, ModelReady, Ready, ServerMetadata
from app.registry import ModelRegistry
from app.timing import PhaseTimings

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])
MODEL = "/models/{name}"
VERSIONED = "/models/{name}/versions/{version}"
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": "Error"} for s in (400, 404, 413, 415, 422, 429, 500, 503, 504)
}
INFER_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{InferRequest.__name__}"},
                "example": {
                    "inputs": [
                        {"name": "image", "shape": [1], "datatype": "BYTES", "data": ["<base64>"]},
                        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["Axial CT"]},
                    ]
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "JSON header, then the binary tensors (binary-data extension; "
                "its length in Inference-Header-Content-Length)",
            },
        },
    }
}


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name="fusionserve", version=request.app.version, extensions=EXTENSIONS)


@router.get(
    "/health/live",
    response_model=Live,
    responses={503: {"model": Live, "description": "A model run stalled past its grace"}},
    summary="Process is alive",
)
async def live(registry: RegistryDep) -> JSONResponse:
    alive, _ = registry.liveness()
    return JSONResponse(Live(live=alive).model_dump(), status_code=200 if alive else 503)


@router.get(
    "/health/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready (loading, failed, draining)"}},
    summary="Every model ready; not draining",
)
async def ready(registry: RegistryDep) -> JSONResponse:
    ok, _ = registry.readiness()
    return JSONResponse(Ready(ready=ok).model_dump(), status_code=200 if ok else 503)


def _metadata(registry: ModelRegistry, name: str, version: str | None) -> ModelMetadata:
    return model_metadata(find_model(registry, name, version))


@router.get(
    MODEL, response_model=ModelMetadata, responses=ERRORS, summary="Model metadata and labels"
)
async def metadata(name: str, registry: RegistryDep) -> ModelMetadata:
    return _metadata(registry, name, None)


@router.get(VERSIONED, response_model=ModelMetadata, include_in_schema=False)
async def metadata_versioned(name: str, version: str, registry: RegistryDep) -> ModelMetadata:
    return _metadata(registry, name, version)


def _model_ready(registry: ModelRegistry, name: str, version: str | None) -> JSONResponse:
    served = find_model(registry, name, version)
    body = ModelReady(name=served.name, ready=served.ready).model_dump()
    return JSONResponse(body, status_code=200 if served.ready else 503)


@router.get(
    f"{MODEL}/ready",
    response_model=ModelReady,
    responses={**ERRORS, 503: {"model": ModelReady, "description": "Not ready"}},
    summary="Model readiness (200 ready, 503 not)",
)
async def model_ready(name: str, registry: RegistryDep) -> JSONResponse:
    return _model_ready(registry, name, None)


@router.get(f"{VERSIONED}/ready", response_model=ModelReady, include_in_schema=False)
async def model_ready_versioned(name: str, version: str, registry: RegistryDep) -> JSONResponse:
    return _model_ready(registry, name, version)


async def _infer(
    request: Request, service: InferenceService, name: str, version: str | None
) -> Response:
    # ready before reading a body nobody could answer
    bundle = find_model(service.registry, name, version).require_ready().bundle
    manifest = bundle.manifest
    settings = service.settings
    items = await read_infer(request, settings.max_body_bytes, settings.max_batch_items)
    check_outputs(items.outputs, [n for n, _, _ in declared_outputs(manifest)])
    timings = [PhaseTimings() for _ in items.images]
    answers = await asyncio.gather(
        *(
            service.predict(image, text, bundle.name, None, t)
            for image, text, t in zip(items.images, items.texts, timings, strict=True)
        ),
        return_exceptions=True,
    )
    results: list[PredictionResult] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer  # the first failed item, by index
        results.append(answer)
    request.state.timings = max(timings, key=lambda t: t.total)  # Server-Timing: the slowest
    computed = results[0].model  # the version that ran (a swap may follow the check above)
    return infer_response(
        computed.name,
        computed.version,
        items.request_id,
        output_tensors(computed.manifest, [r.prediction for r in results]),
        items.outputs,
        items.binary_default,
    )


@router.post(
    f"{MODEL}/infer",
    response_class=Response,
    responses={
        200: {"description": "Outputs (JSON; octet-stream with binary tensors)"},
        **ERRORS,
    },
    openapi_extra=INFER_DOC,
    summary="Infer N items (image + text BYTES tensors)",
)
async def infer(name: str, request: Request, service: ServiceDep) -> Response:
    return await _infer(request, service, name, None)


@router.post(f"{VERSIONED}/infer", response_class=Response, include_in_schema=False)
async def infer_versioned(
    name: str, version: str, request: Request, service: ServiceDep
) -> Response:
    return await _infer(request, service, name, version)
