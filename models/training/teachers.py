"""The frozen teacher a student distils from: a training checkpoint (logits and features) or
an exported bundle (logits only), checked against the student's config before any training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from models.checkpoint import load_checkpoint
from models.checkpoint_metadata import CheckpointMetadata, MetadataError
from models.multitask import MultiTaskModel
from models.training.config import ConfigError, DistillConfig, TrainConfig
from models.training.teacher_bundle import BundleTeacher, is_bundle


@dataclass(frozen=True)
class CheckpointTeacher:
    """A teacher from `fusionserve train`, with the text encoding it was trained on."""

    model: MultiTaskModel
    tokenizer: Tokenizer
    max_length: int


Teacher = CheckpointTeacher | BundleTeacher


def load_teacher(cfg: TrainConfig) -> Teacher | None:
    """The config's teacher (None for a teacher or a label-only student)."""
    if cfg.distill is None:
        return None
    if is_bundle(cfg.distill.teacher_checkpoint):
        return load_bundle_teacher(cfg)
    return load_checkpoint_teacher(cfg.distill, cfg.data.type)


def load_checkpoint_teacher(distill: DistillConfig, task_set: str) -> CheckpointTeacher:
    path = Path(distill.teacher_checkpoint)
    if not path.is_file():
        raise ConfigError(
            f"'distill.teacher_checkpoint': file not found: {path.resolve()} "
            "(train the teacher first)"
        )
    model, _cfg, meta = load_checkpoint(path)
    if meta.task_set != task_set:
        raise ConfigError(
            f"'distill.teacher_checkpoint': teacher task set {meta.task_set!r} "
            f"!= data.type {task_set!r}"
        )
    return CheckpointTeacher(model, _tokenizer(meta, path), meta.max_text_length)


def _tokenizer(meta: CheckpointMetadata, path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_str(meta.require_tokenizer())
    except MetadataError as exc:
        raise ConfigError(f"'distill.teacher_checkpoint': {path}: {exc}") from None


def load_bundle_teacher(cfg: TrainConfig) -> BundleTeacher:
    """The exported teacher bundle named by distill.teacher_checkpoint (logit KD only)."""
    assert cfg.distill is not None
    if cfg.distill.loss == "combined":
        raise ConfigError(
            "'distill.loss': 'combined' needs the teacher's features, which a bundle does not "
            "expose; use 'vanilla' with a bundle, or point at a training checkpoint"
        )
    try:
        return BundleTeacher.load(cfg.distill.teacher_checkpoint, cfg.data.type)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def tokenizer_override(
    cfg: TrainConfig, teacher: Teacher | None
) -> tuple[Tokenizer | None, int | None]:
    """The teacher's tokenizer and max length when the student reuses them (from_teacher)."""
    if not cfg.tokenizer.from_teacher or teacher is None:
        return None, None
    return teacher.tokenizer, teacher.max_length
