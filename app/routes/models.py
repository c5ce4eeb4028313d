"""GET /models and /models/{name}: what is served, whether it is ready, and how it runs."""

from __future__ import annotations

from fastapi import APIRouter

from app.contract.tasks import TASK_SETS
from app.dependencies import RegistryDep
from app.errors import ServiceError
from app.openapi_docs import error_responses
from app.registry import ModelRegistry
from app.schemas import BatchingInfo, ModelInfo, ModelList, TaskInfo
from app.served_model import ServedModel

router = APIRouter(tags=["models"])


def _aliases(registry: ModelRegistry, served: ServedModel) -> list[str]:
    """Task sets that resolve to this bundle for its own role."""
    if served.manifest is None:
        return []
    aliases = []
    for task_set in TASK_SETS:
        try:
            if registry.lookup(task_set, served.manifest.role) is served:
                aliases.append(task_set)
        except ServiceError:
            continue
    return aliases


def model_info(registry: ModelRegistry, served: ServedModel) -> ModelInfo:
    info = ModelInfo(
        name=served.name,
        ready=served.ready,
        state=served.state.value,
        reason=served.status_reason,
        aliases=_aliases(registry, served),
    )
    manifest = served.manifest
    if manifest is not None:
        info.task_set, info.role, info.fusion = manifest.task_set, manifest.role, manifest.fusion
        info.version = manifest.version
        info.tasks = [
            TaskInfo(name=t.name, labels=t.labels, temperature=t.temperature)
            for t in manifest.tasks
        ]
        info.modality_weights = manifest.modality_weights_output is not None
        info.preprocessing = manifest.preprocessing.model_dump(mode="json")
        info.backbones = manifest.backbones
        info.parameter_count = manifest.parameter_count
        info.metrics, info.provenance = manifest.metrics, manifest.provenance
        if manifest.domain is not None:
            info.domain = manifest.domain.model_dump(mode="json", exclude={"self_test"})
        info.created_at, info.git_commit = manifest.created_at, manifest.git_commit
    if served.active is not None:
        bundle, batcher = served.active.bundle, served.active.batcher
        onnx = bundle.onnx
        info.provider, info.providers = onnx.provider, onnx.providers
        info.precision, info.model_file = onnx.precision, onnx.model_file
        info.load_s, info.warmup_s = round(bundle.load_s, 4), round(bundle.warmup_s, 4)
        info.batching = BatchingInfo(
            max_batch_size=batcher.max_batch_size,
            max_delay_ms=batcher.max_delay_s * 1000.0,
            queue_size=batcher.queue_size,
            queue_depth=batcher.depth,
            concurrent_runs=batcher.concurrent_runs,
        )
        info.settings = bundle.settings
    return info


@router.get("/models", response_model=ModelList, summary="Every configured bundle")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[model_info(registry, m) for m in registry.models.values()])


@router.get(
    "/models/{name}",
    response_model=ModelInfo,
    responses=error_responses(404),
    summary="One bundle, by name or task set (its student)",
)
async def get_model(name: str, registry: RegistryDep) -> ModelInfo:
    return model_info(registry, registry.lookup(name))
