"""Model configuration shared by teacher and student (they differ only in these values)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.backbones import validate_backbone
from models.fusion import FUSIONS, canonical_fusion_name, validate_fusion_params


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (research `results.json["config"]`
    equivalents). Validated on construction; round-trips through plain dicts (YAML/JSON).

    vision/text: research backbone name (models.backbones.VISION_PRESETS / TEXT_PRESETS) or a
    custom dict ``{"type": ..., **transformers config kwargs}``.
    fusion_type: any research spelling; stored canonically (e.g. "cross_attention").
    fusion_params: hidden_mult, dropout (fusion dropout), p_img, p_txt, … (see models.fusion).
    num_classes: (task-1 classes, task-2 classes) for head_modality / head_location.
    text_vocab_size: overrides the text config's vocab size (own tokenizer).
    """

    vision: str | dict[str, Any]
    text: str | dict[str, Any]
    fusion_dim: int
    fusion_type: str = "cross_attention"
    fusion_heads: int = 8
    fusion_layers: int = 1
    dropout: float = 0.1
    fusion_params: dict[str, Any] = field(default_factory=dict)
    num_classes: tuple[int, int] = (2, 5)
    text_vocab_size: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "vision", _copy_spec(self.vision, "vision"))
        set_(self, "text", _copy_spec(self.text, "text"))
        validate_backbone(self.vision, "vision")
        validate_backbone(self.text, "text")
        for name in ("fusion_dim", "fusion_heads", "fusion_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        set_(self, "fusion_type", canonical_fusion_name(str(self.fusion_type)))
        if FUSIONS[self.fusion_type].uses_heads and self.fusion_dim % self.fusion_heads:
            raise ValueError(
                f"fusion_dim {self.fusion_dim} must be divisible by fusion_heads "
                f"{self.fusion_heads} for {self.fusion_type}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.fusion_params, Mapping):
            raise ValueError("fusion_params must be a dict")
        set_(self, "fusion_params", dict(self.fusion_params))
        validate_fusion_params(self.fusion_params)
        classes = tuple(self.num_classes)
        if len(classes) != 2 or not all(isinstance(c, int) and c >= 2 for c in classes):
            raise ValueError(f"num_classes must be two ints >= 2, got {self.num_classes!r}")
        set_(self, "num_classes", classes)
        vocab = self.text_vocab_size
        if vocab is not None and (not isinstance(vocab, int) or vocab < 1):
            raise ValueError(f"text_vocab_size must be a positive int or None, got {vocab!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["num_classes"] = list(self.num_classes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; valid: {sorted(known)}")
        missing = sorted(n for n in ("vision", "text", "fusion_dim") if n not in d)
        if missing:
            raise ValueError(f"model config is missing {missing}")
        kwargs = dict(d)
        if "num_classes" in kwargs:
            kwargs["num_classes"] = tuple(kwargs["num_classes"])
        return cls(**kwargs)


def _copy_spec(spec: Any, kind: str) -> str | dict[str, Any]:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()}
    raise ValueError(f"{kind} must be a backbone name or a dict, got {type(spec).__name__}")
