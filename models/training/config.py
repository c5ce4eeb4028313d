"""Training configuration: the YAML schema, validated up front with errors naming the bad key.

A config describes one model (teacher or student). Relative paths are resolved against the
working directory (run `fusionserve train` from the repository root); configs keep data and
outputs outside the work tree (e.g. `../shared/datasets/...`, `../artifacts/checkpoints/...`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("teacher", "student")
LOSS_TYPES = ("ce", "vanilla", "combined")
SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTINGS = ("none", "balanced")
SELECTIONS = ("best", "last")
TEACHER_VIEWS = ("augmented", "clean")


class ConfigError(ValueError):
    """The config is invalid; the message names the offending key."""


@dataclass(frozen=True)
class DataConfig:
    type: str  # "medpix" or "wound" (also the task set)
    root: str
    train_split: str = "train"
    dev_split: str = "dev"
    batch_size: int = 32
    image_size: int = 224
    cache_dir: str | None = "../artifacts/cache"
    columns: dict[str, str] = field(default_factory=dict)  # wound CSV column overrides


@dataclass(frozen=True)
class TokenizerConfig:
    """Which tokenizer the text backbone reads. A trained WordPiece vocabulary is not bit-exact
    across runs (`tokenizers` breaks frequency ties in hash order); the trained tokenizer is
    saved with the checkpoint, and `path` pins one for exact reruns."""

    path: str | None = None  # tokenizer.json or vocab.txt; None → train WordPiece on train texts
    from_teacher: bool = False  # student: reuse the teacher checkpoint's tokenizer and length
    vocab_size: int = 8000
    min_frequency: int = 2
    lowercase: bool = True
    max_length: int = 128


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 10
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    schedule: str = "constant"
    grad_clip: float | None = None
    hflip: bool = False  # horizontal flips of training images
    crop_min_scale: float = 1.0  # random resized crops keeping ≥ this area share (1 = off)
    # Share of training samples whose text is replaced by the service's empty-text fallback,
    # so the image branch must learn on its own instead of leaning on the text that fits first.
    text_dropout: float = 0.0
    # Weights of the unimodal CE terms added to every batch's loss (models.training.unimodal):
    # image only (the empty-text row) and text only (a black image); 0 = off.
    image_only_loss: float = 0.0
    text_only_loss: float = 0.0
    # "balanced" weights each class's CE by N / (K · n_c): models are selected on macro-F1.
    class_weighting: str = "none"
    # Which epoch is kept: "best" dev mean macro-F1, or "last" (a fixed recipe, nothing picked
    # on the small dev split).
    select: str = "best"

    @property
    def augments_images(self) -> bool:
        """Whether training pixels differ between epochs (teacher outputs cannot be cached)."""
        return self.hflip or self.crop_min_scale < 1.0


@dataclass(frozen=True)
class DistillConfig:
    teacher_checkpoint: str
    loss: str = "combined"
    alpha: float = 1.0  # KL weight (CE weight is fixed at 1, as in the research code)
    beta: float = 1.0  # feature MSE weight
    gamma: float = 0.1  # contrastive (InfoNCE) weight
    temperature: float = 4.0  # KD temperature T
    contrastive_temperature: float = 0.1
    # "augmented": the teacher sees each step's flipped/cropped pixels (exact, a teacher
    # forward per step); "clean": its outputs on the unaugmented training images are computed
    # once before the first epoch (offline distillation, several times cheaper on CPU).
    teacher_views: str = "augmented"


@dataclass(frozen=True)
class InitConfig:
    text_weights: str | None = None  # local BERT-family weights (path or pkg:<package>/<file>)
    freeze_text: bool = False  # keep the text backbone fixed (eval mode, no gradients)
    # Word-embedding table of wider pretrained weights (same vocabulary), reduced by PCA to the
    # student's width: pretrained lexical structure for a small from-scratch text encoder.
    text_embeddings: str | None = None
    # Keep the word-embedding table fixed (its init, e.g. the PCA of MiniLM's): most of a small
    # student's parameters, and the part that memorises the training captions.
    freeze_word_embeddings: bool = False


@dataclass(frozen=True)
class VisionPretrainConfig:
    """Image-only stage before the fused training (see models.training.vision_pretrain)."""

    epochs: int
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_ratio: float = 0.05


@dataclass(frozen=True)
class TrainConfig:
    name: str
    role: str
    data: DataConfig
    model: dict[str, Any]  # models.config.ModelConfig.from_dict input (validated there)
    output_dir: str
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig | None = None
    init: InitConfig = field(default_factory=InitConfig)
    pretrain_vision: VisionPretrainConfig | None = None
    seed: int = 42
    threads: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: object) -> TrainConfig:
        cfg = _build(cls, raw, "")
        _check(cfg)
        return cfg


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


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(cls: type, raw: object, prefix: str) -> Any:
    where = prefix or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {_key(prefix, str(unknown[0]))!r}; valid keys: {sorted(fields)}"
        )
    values: dict[str, Any] = {}
    for name, fld in fields.items():
        key = _key(prefix, name)
        if name not in raw:
            no_default = dataclasses.MISSING
            if fld.default is no_default and fld.default_factory is no_default:
                raise ConfigError(f"missing required key {key!r}")
            continue
        values[name] = _coerce(hints[name], raw[name], key)
    return cls(**values)


def _coerce(hint: Any, value: object, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key!r}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key!r}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "3e-4" as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key!r}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key!r}: expected a string, got {value!r}")
        return value
    return value


def _check(cfg: TrainConfig) -> None:
    from app.contract.tasks import TASK_SETS

    if cfg.role not in ROLES:
        raise ConfigError(f"'role': {cfg.role!r} is not one of {list(ROLES)}")
    if cfg.data.type not in TASK_SETS:
        raise ConfigError(f"'data.type': {cfg.data.type!r} is not one of {sorted(TASK_SETS)}")
    if cfg.tokenizer.from_teacher and cfg.distill is None:
        raise ConfigError("'tokenizer.from_teacher': needs 'distill' (the teacher checkpoint)")
    if cfg.role == "teacher" and cfg.distill is not None:
        raise ConfigError("'distill': only a student config may have it")
    if cfg.distill is not None and cfg.distill.loss not in LOSS_TYPES:
        raise ConfigError(f"'distill.loss': {cfg.distill.loss!r} is not one of {list(LOSS_TYPES)}")
    if cfg.distill is not None and cfg.distill.teacher_views not in TEACHER_VIEWS:
        raise ConfigError(
            f"'distill.teacher_views': {cfg.distill.teacher_views!r} is not one of "
            f"{list(TEACHER_VIEWS)}"
        )
    if cfg.optim.schedule not in SCHEDULES:
        raise ConfigError(
            f"'optim.schedule': {cfg.optim.schedule!r} is not one of {list(SCHEDULES)}"
        )
    positives = {
        "data.batch_size": cfg.data.batch_size,
        "data.image_size": cfg.data.image_size,
        "tokenizer.max_length": cfg.tokenizer.max_length,
        "tokenizer.vocab_size": cfg.tokenizer.vocab_size,
        "optim.epochs": cfg.optim.epochs,
        "optim.lr": cfg.optim.lr,
    }
    for key, number in positives.items():
        if number <= 0:
            raise ConfigError(f"{key!r}: must be > 0, got {number!r}")
    if cfg.optim.class_weighting not in CLASS_WEIGHTINGS:
        raise ConfigError(
            f"'optim.class_weighting': {cfg.optim.class_weighting!r} is not one of "
            f"{list(CLASS_WEIGHTINGS)}"
        )
    if not 0.0 <= cfg.optim.warmup_ratio < 1.0:
        raise ConfigError(f"'optim.warmup_ratio': must be in [0, 1), got {cfg.optim.warmup_ratio}")
    if cfg.pretrain_vision is not None:
        stage = cfg.pretrain_vision
        if stage.epochs <= 0 or stage.lr <= 0:
            raise ConfigError("'pretrain_vision.epochs' and '.lr': must be > 0")
        if not 0.0 <= stage.warmup_ratio < 1.0:
            raise ConfigError(
                f"'pretrain_vision.warmup_ratio': must be in [0, 1), got {stage.warmup_ratio}"
            )
    if not 0.0 < cfg.optim.crop_min_scale <= 1.0:
        raise ConfigError(
            f"'optim.crop_min_scale': must be in (0, 1], got {cfg.optim.crop_min_scale}"
        )
    if cfg.optim.select not in SELECTIONS:
        raise ConfigError(f"'optim.select': {cfg.optim.select!r} is not one of {list(SELECTIONS)}")
    for key in ("image_only_loss", "text_only_loss"):
        if getattr(cfg.optim, key) < 0:
            raise ConfigError(f"'optim.{key}': must be >= 0, got {getattr(cfg.optim, key)}")
    if not 0.0 <= cfg.optim.text_dropout < 1.0:
        raise ConfigError(f"'optim.text_dropout': must be in [0, 1), got {cfg.optim.text_dropout}")
    if cfg.tokenizer.from_teacher and cfg.role != "student":
        raise ConfigError("'tokenizer.from_teacher': only a student config may set it")
    if cfg.tokenizer.from_teacher and cfg.tokenizer.path is not None:
        raise ConfigError("'tokenizer.path': cannot be combined with tokenizer.from_teacher")
    if cfg.init.freeze_text and cfg.init.text_weights is None:
        raise ConfigError("'init.freeze_text': needs 'init.text_weights' (a frozen random encoder)")
    if cfg.init.text_embeddings is not None and cfg.init.text_weights is not None:
        raise ConfigError("'init.text_embeddings': cannot be combined with init.text_weights")
    if cfg.tokenizer.max_length < 3:
        raise ConfigError("'tokenizer.max_length': must be >= 3 ([CLS] text [SEP])")
    for key in ("vision", "text", "fusion_dim"):
        if key not in cfg.model:
            raise ConfigError(f"missing required key 'model.{key}'")
