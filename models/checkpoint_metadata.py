"""What a checkpoint says about its model besides the weights: task set, role, text encoding,
label order, the training config and the selected epoch's metrics.

Stored as plain top-level keys of the checkpoint dict (``weights_only=True`` loading needs
plain types), so files written before this class existed load unchanged; keys this class does
not know are kept in `other` and written back as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_IMAGE_SIZE = 224
_OPTIONAL = ("tokenizer_json", "labels", "training_config", "metrics")


class MetadataError(ValueError):
    """The checkpoint lacks a key its reader needs, or a key has the wrong type."""


@dataclass(frozen=True)
class CheckpointMetadata:
    task_set: str
    role: str
    max_text_length: int
    tokenizer_json: str | None = None  # the tokenizer JSON the text backbone was trained with
    labels: dict[str, list[str]] | None = None  # class names per task, in logit order
    training_config: dict[str, Any] | None = None  # TrainConfig.to_dict() of the run
    metrics: dict[str, Any] | None = None  # {"epoch", "dev"} of the kept epoch
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CheckpointMetadata:
        for key in ("task_set", "role", "max_text_length"):
            if key not in raw:
                raise MetadataError(f"checkpoint lacks {key!r}")
        known = {"task_set", "role", "max_text_length", *_OPTIONAL}
        return cls(
            task_set=str(raw["task_set"]),
            role=str(raw["role"]),
            max_text_length=int(raw["max_text_length"]),
            tokenizer_json=_optional(raw, "tokenizer_json", str),
            labels=_optional(raw, "labels", dict),
            training_config=_optional(raw, "training_config", dict),
            metrics=_optional(raw, "metrics", dict),
            other={k: v for k, v in raw.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's top-level keys; absent optional fields stay absent."""
        raw: dict[str, Any] = {
            "task_set": self.task_set,
            "role": self.role,
            "tokenizer_json": self.tokenizer_json,
            "max_text_length": self.max_text_length,
            "labels": self.labels,
            "training_config": self.training_config,
            "metrics": self.metrics,
        }
        return {**{k: v for k, v in raw.items() if v is not None}, **self.other}

    def require_tokenizer(self) -> str:
        """The tokenizer JSON, which every reader that encodes text needs."""
        if self.tokenizer_json is None:
            raise MetadataError("checkpoint lacks 'tokenizer_json'")
        return self.tokenizer_json

    @property
    def data_config(self) -> dict[str, Any]:
        """The training config's `data` section ({} when not recorded)."""
        return dict((self.training_config or {}).get("data") or {})

    @property
    def image_size(self) -> int:
        return int(self.data_config.get("image_size") or DEFAULT_IMAGE_SIZE)

    @property
    def provenance(self) -> Any:
        return (self.training_config or {}).get("provenance")


def _optional(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if value is not None and not isinstance(value, kind):
        raise MetadataError(f"checkpoint {key!r}: expected {kind.__name__}, got {value!r}")
    return value
