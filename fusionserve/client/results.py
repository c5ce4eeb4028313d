"""Typed results parsed from the server's JSON (frozen dataclasses: no validation library needed
on the caller's side, and attribute access with type hints in editors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fusionserve.client.errors import ApiError


@dataclass(frozen=True)
class ModelRef:
    name: str
    task_set: str
    role: str
    fusion: str
    version: str


@dataclass(frozen=True)
class TaskPrediction:
    label: str
    probability: float
    probabilities: dict[str, float]
    low_confidence: bool


@dataclass(frozen=True)
class DomainSide:
    """Whether one side (image or text) looks like the model's training data; `score` is
    distance / threshold, out of domain above 1."""

    in_domain: bool
    score: float


@dataclass(frozen=True)
class Prediction:
    """One `/predict` answer; `raw` keeps the JSON as sent (for JSONL output)."""

    model: ModelRef
    predictions: dict[str, TaskPrediction]
    timing_ms: dict[str, float]
    modality_weights: dict[str, float] | None = None
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    domain: dict[str, DomainSide] | None = None  # image, text; None: the bundle has no check

    @property
    def out_of_domain(self) -> list[str]:
        """The sides flagged out of domain (empty: none, or no check)."""
        return [side for side, d in (self.domain or {}).items() if not d.in_domain]

    @property
    def labels(self) -> dict[str, str]:
        """Top label per task."""
        return {task: p.label for task, p in self.predictions.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any], request_id: str | None = None) -> Prediction:
        return cls(
            model=ModelRef(**{k: str(data["model"][k]) for k in ModelRef.__dataclass_fields__}),
            predictions={
                task: TaskPrediction(
                    label=p["label"],
                    probability=float(p["probability"]),
                    probabilities={k: float(v) for k, v in p["probabilities"].items()},
                    low_confidence=bool(p.get("low_confidence", False)),
                )
                for task, p in data["predictions"].items()
            },
            timing_ms={k: float(v) for k, v in data.get("timing_ms", {}).items()},
            modality_weights=data.get("modality_weights"),
            request_id=request_id,
            raw=data,
            domain=_domain(data.get("domain")),
        )


def _domain(data: dict[str, Any] | None) -> dict[str, DomainSide] | None:
    if not data:
        return None
    return {side: DomainSide(bool(d["in_domain"]), float(d["score"])) for side, d in data.items()}


@dataclass(frozen=True)
class BatchItem:
    """One item of a `/predict/batch` answer: a prediction or that item's own error."""

    index: int
    status: int
    prediction: Prediction | None = None
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchItem:
        status = int(data["status"])
        if data.get("result") is not None:
            return cls(int(data["index"]), status, prediction=Prediction.from_json(data["result"]))
        error = data.get("error") or {}
        return cls(
            int(data["index"]),
            status,
            error=ApiError(status, error.get("code", "unknown"), error.get("message", "")),
        )


@dataclass(frozen=True)
class ModelInfo:
    """A served model as `/models` lists it (the fields a caller chooses by)."""

    name: str
    ready: bool
    state: str
    task_set: str | None
    role: str | None
    aliases: list[str]
    tasks: dict[str, list[str]]
    reason: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(
            name=data["name"],
            ready=bool(data["ready"]),
            state=data["state"],
            task_set=data.get("task_set"),
            role=data.get("role"),
            aliases=list(data.get("aliases", [])),
            tasks={t["name"]: list(t["labels"]) for t in data.get("tasks", [])},
            reason=data.get("reason"),
        )
