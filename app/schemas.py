"""Request and response models: the public HTTP contract, with OpenAPI examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.lifecycle import ServiceState
from app.model_settings import ModelSettings

ROLE_FIELD: Any = Field(
    default=None,
    description="`student` (default) or `teacher`; only used when `model` is a task set.",
    json_schema_extra={"enum": ["student", "teacher"]},
)
MODEL_FIELD: Any = Field(
    default=None,
    description="Bundle name (e.g. `medpix-student`) or task set (`medpix`, `wound`); "
    "default: DEFAULT_TASK_SET's student.",
)


class PredictRequest(BaseModel):
    """JSON form of one prediction request (multipart uses the same field names)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        description="The image file's bytes, base64-encoded (a `data:` URL prefix is accepted)."
    )
    text: str = Field(
        description="Free text (caption / wound description). Empty → the bundle's fallback."
    )
    model: str | None = MODEL_FIELD
    role: str | None = ROLE_FIELD


class BatchRequest(BaseModel):
    """Many items in one call; each is validated and answered on its own."""

    model_config = ConfigDict(extra="forbid")

    items: list[PredictRequest] = Field(description="At most MAX_BATCH_ITEMS items.")
    model: str | None = Field(default=None, description="Default `model` for items that name none.")
    role: str | None = Field(default=None, description="Default `role` for items that name none.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `image_too_large`.")
    message: str = Field(description="Human-readable explanation.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ModelIdentity(BaseModel):
    name: str
    task_set: str
    role: str
    fusion: str
    version: str = Field(description="sha256 prefix of the bundle's fp32 graph.")


class TaskPredictionOut(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float] = Field(description="Every label's calibrated probability.")
    low_confidence: bool = Field(
        description="Top probability < LOW_CONFIDENCE_THRESHOLD, or an input out of domain."
    )


class ModalityWeights(BaseModel):
    image: float
    text: float


class DomainSideOut(BaseModel):
    in_domain: bool = Field(
        description="False when this side does not look like the model's training data."
    )
    score: float = Field(
        description="Distance to the training data / the fitted threshold: above 1 is out of "
        "domain. A blank text is never flagged (the service's own fallback), its score is shown."
    )


class DomainOut(BaseModel):
    image: DomainSideOut
    text: DomainSideOut


class TimingMs(BaseModel):
    queue: float
    preprocess: float
    inference: float
    total: float


PREDICT_RESPONSE_EXAMPLE: Any = {
    "model": {
        "name": "medpix-student",
        "task_set": "medpix",
        "role": "student",
        "fusion": "cross_attention",
        "version": "3f2a9c81d0e4",
    },
    "predictions": {
        "modality": {
            "label": "CT",
            "probability": 0.97,
            "probabilities": {"CT": 0.97, "MR": 0.03},
            "low_confidence": False,
        },
        "location": {
            "label": "Thorax",
            "probability": 0.91,
            "probabilities": {
                "Abdomen": 0.03,
                "Head": 0.01,
                "Reproductive and Urinary System": 0.01,
                "Thorax": 0.91,
                "Spine and Muscles": 0.04,
            },
            "low_confidence": False,
        },
    },
    "modality_weights": {"image": 0.63, "text": 0.37},
    "domain": {
        "image": {"in_domain": True, "score": 0.41},
        "text": {"in_domain": True, "score": 0.58},
    },
    "timing_ms": {"queue": 0.4, "preprocess": 3.1, "inference": 5.2, "total": 9.3},
}


class PredictResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PREDICT_RESPONSE_EXAMPLE]})

    model: ModelIdentity
    predictions: dict[str, TaskPredictionOut]
    modality_weights: ModalityWeights | None = Field(
        default=None, description="Present when the bundle's fusion exposes modality weights."
    )
    domain: DomainOut | None = Field(
        default=None,
        description="Whether the image and the text look like the model's training data; "
        "present when the bundle carries a fitted domain check. Either side out of domain "
        "sets every task's low_confidence.",
    )
    timing_ms: TimingMs


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="The HTTP status this item would have had on its own.")
    result: PredictResponse | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]


class TaskInfo(BaseModel):
    name: str
    labels: list[str]
    temperature: float


class BatchingInfo(BaseModel):
    max_batch_size: int
    max_delay_ms: float
    queue_size: int
    queue_depth: int
    concurrent_runs: int = Field(description="Graph runs this model may have at once (resolved).")


class ModelInfo(BaseModel):
    name: str
    ready: bool
    state: Literal["loading", "ready", "failed", "unloaded"]
    reason: str | None = None
    task_set: str | None = None
    role: str | None = None
    fusion: str | None = None
    version: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Task sets resolving here.")
    provider: str | None = Field(default=None, description="Execution provider actually in use.")
    providers: list[str] = Field(default_factory=list)
    precision: str | None = None
    model_file: str | None = None
    tasks: list[TaskInfo] = Field(default_factory=list)
    modality_weights: bool = False
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    backbones: dict[str, Any] = Field(default_factory=dict)
    parameter_count: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the model came from: data, weights, checkpoint sha256; "
        '`source` is "trained" or "imported" (research checkpoint, with its YAML and '
        "whether it was calibrated).",
    )
    domain: dict[str, Any] | None = Field(
        default=None,
        description="The bundle's domain check: method, the graph outputs it reads, how it "
        "was fitted and the flag rates measured at export; absent when none was fitted.",
    )
    created_at: str | None = None
    git_commit: str | None = None
    load_s: float | None = None
    warmup_s: float | None = None
    batching: BatchingInfo | None = None
    settings: ModelSettings | None = Field(
        default=None,
        description="This bundle's effective serving settings, once loaded: "
        "FUSIONSERVE_MODEL__<NAME>__<SETTING> over <bundle>/serving.json over "
        "FUSIONSERVE_<SETTING>.",
    )


class ModelList(BaseModel):
    models: list[ModelInfo]


class ModelReadiness(BaseModel):
    ready: bool
    state: str
    reason: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    state: ServiceState = Field(description="The service's lifecycle state")
    draining: bool
    reasons: list[str]
    models: dict[str, ModelReadiness]


class Liveness(BaseModel):
    status: Literal["alive", "stalled"] = "alive"
    reasons: list[str] | None = Field(
        default=None, description="Why not alive: a model run stalled for over STALL_GRACE_S."
    )
