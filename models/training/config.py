"""Training configuration: the YAML schema, validated up front with errors naming the bad key.

A config describes one model (teacher or student). Relative paths are resolved against the
working directory (run `fusionserve train` from the repository root); configs keep data and
outputs outside the work tree (e.g. `../shared/datasets/...`, `../artifacts/checkpoints/...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator

from models.training.config_fields import ConfigError, Section, describe, one_of
from models.training.config_sections import (
    CLASS_WEIGHTINGS,
    LOSS_TYPES,
    SCHEDULES,
    SELECTIONS,
    TEACHER_VIEWS,
    DataConfig,
    DistillConfig,
    EnsembleConfig,
    InitConfig,
    LateFusionConfig,
    OptimConfig,
    TokenizerConfig,
    VisionPretrainConfig,
)

__all__ = [
    "CLASS_WEIGHTINGS",
    "LOSS_TYPES",
    "ROLES",
    "SCHEDULES",
    "SELECTIONS",
    "TEACHER_VIEWS",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "EnsembleConfig",
    "InitConfig",
    "LateFusionConfig",
    "OptimConfig",
    "TokenizerConfig",
    "TrainConfig",
    "VisionPretrainConfig",
    "load_config",
]

ROLES = ("teacher", "student")
MODEL_KEYS = ("vision", "text", "fusion_dim")


def _model_keys(model: dict[str, Any]) -> dict[str, Any]:
    """The rest of `model` is checked by models.config.ModelConfig once the data is known."""
    for key in MODEL_KEYS:
        if key not in model:
            raise ConfigError(f"missing required key 'model.{key}'")
    return model


class TrainConfig(Section):
    name: str
    role: Annotated[str, one_of(ROLES)]
    data: DataConfig
    model: Annotated[dict[str, Any], AfterValidator(_model_keys)]  # ModelConfig.from_dict input
    output_dir: str
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    distill: DistillConfig | None = None
    init: InitConfig = Field(default_factory=InitConfig)
    pretrain_vision: VisionPretrainConfig | None = None
    seed: int = 42
    ensemble: EnsembleConfig | None = None  # one member per seed, served as one model
    late_fusion: LateFusionConfig | None = None  # a text model beside the network, per task
    threads: int | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _roles_agree(self) -> TrainConfig:
        """Distillation belongs to students, and only they can borrow the teacher's tokenizer."""
        if self.tokenizer.from_teacher and self.distill is None:
            raise ConfigError("'tokenizer.from_teacher': needs 'distill' (the teacher checkpoint)")
        if self.role == "teacher" and self.distill is not None:
            raise ConfigError("'distill': only a student config may have it")
        if self.tokenizer.from_teacher and self.role != "student":
            raise ConfigError("'tokenizer.from_teacher': only a student config may set it")
        if self.ensemble is not None and self.late_fusion is not None:
            raise ConfigError("'late_fusion': not with 'ensemble' (one network is late-fused)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, raw: object) -> TrainConfig:
        """Validate `raw`; the first problem becomes a ConfigError naming its key."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(describe(exc.errors()[0])) from None


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML config file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path.resolve()}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    try:
        return TrainConfig.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
