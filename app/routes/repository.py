"""The Open Inference Protocol's model-repository extension (as Triton's explicit model control):
list the configured models, load a model's folder again as a new version, unload a model.

A load builds and warms the new version beside the one serving and switches atomically
(`app.model_swap`); if the new version fails verification, the old one keeps serving and the
call answers 400 `load_failed` with the reason. Behind the API key when one is set (the auth
layer protects every route it does not list as open).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, StrictBool

from app.dependencies import RegistryDep
from app.served_model import ModelState, ServedModel

router = APIRouter(prefix="/v2/repository", tags=["open inference protocol v2"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"description": "Error"} for s in (400, 404)}

# OIP/Triton repository states; failed and unloaded models are both "not available".
STATES: dict[ModelState, str] = {
    ModelState.READY: "READY",
    ModelState.LOADING: "LOADING",
    ModelState.FAILED: "UNAVAILABLE",
    ModelState.UNLOADED: "UNAVAILABLE",
}


class IndexRequest(BaseModel):
    ready: StrictBool = Field(default=False, description="Only the models that are ready now.")


class RepositoryModel(BaseModel):
    name: str
    version: str = Field(description="The version that answers (bundle sha256 prefix); '' if none")
    state: str = Field(description="READY, LOADING or UNAVAILABLE (failed, unloaded, stalled)")
    reason: str = ""


def entry(served: ServedModel) -> RepositoryModel:
    """A model as the index shows it; a stalled model reads UNAVAILABLE with the reason."""
    state = STATES[served.state]
    if state == "READY" and not served.ready:
        state = "UNAVAILABLE"
    version = ""
    if served.active is not None:
        version = served.active.bundle.version
    return RepositoryModel(
        name=served.name, version=version, state=state, reason=served.status_reason or ""
    )


@router.post(
    "/index",
    response_model=list[RepositoryModel],
    # a body that is not JSON (400), too large (413) or of another media type (415)
    responses={s: {"description": "Error"} for s in (400, 413, 415)},
    summary="Configured models",
)
async def index(
    registry: RegistryDep, body: Annotated[IndexRequest | None, Body()] = None
) -> list[RepositoryModel]:
    entries = [entry(m) for m in registry.models.values()]
    if body is not None and body.ready:
        entries = [e for e in entries if e.state == "READY"]
    return entries


@router.post(
    "/models/{name}/load",
    response_model=RepositoryModel,
    responses=ERRORS,
    summary="Load the model's folder as its new version (hot swap)",
)
async def load(name: str, registry: RegistryDep) -> RepositoryModel:
    return entry(await registry.load(name))


@router.post(
    "/models/{name}/unload",
    response_model=RepositoryModel,
    responses=ERRORS,
    summary="Stop serving the model (queued items finish first)",
)
async def unload(name: str, registry: RegistryDep) -> RepositoryModel:
    return entry(await registry.unload(name))
