"""The sections of a training config (`data`, `tokenizer`, `optim`, `distill`, `init`,
`pretrain_vision`): keys, defaults and the checks that need only the section itself."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from models.training.config_fields import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    ConfigError,
    Number,
    Section,
    check,
    one_of,
)

LOSS_TYPES = ("ce", "vanilla", "combined")
SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTINGS = ("none", "balanced")
SELECTIONS = ("best", "last")
TEACHER_VIEWS = ("augmented", "clean")


def _known_task_set(value: str) -> str:
    from app.contract.tasks import TASK_SETS  # the serving contract owns the task sets

    if value not in TASK_SETS:
        raise ValueError(f"{value!r} is not one of {sorted(TASK_SETS)}")
    return value


class DataConfig(Section):
    type: Annotated[str, AfterValidator(_known_task_set)]  # "medpix" or "wound" (the task set)
    root: str
    train_split: str = "train"
    dev_split: str = "dev"
    batch_size: Annotated[int, POSITIVE] = 32
    image_size: Annotated[int, POSITIVE] = 224
    cache_dir: str | None = "../artifacts/cache"
    columns: dict[str, str] = Field(default_factory=dict)  # wound CSV column overrides


class TokenizerConfig(Section):
    """Which tokenizer the text backbone reads. A trained WordPiece vocabulary is not bit-exact
    across runs (`tokenizers` breaks frequency ties in hash order); the trained tokenizer is
    saved with the checkpoint, and `path` pins one for exact reruns."""

    path: str | None = None  # tokenizer.json or vocab.txt; None → train WordPiece on train texts
    from_teacher: bool = False  # student: reuse the teacher checkpoint's tokenizer and length
    vocab_size: Annotated[int, POSITIVE] = 8000
    min_frequency: int = 2
    lowercase: bool = True
    max_length: Annotated[
        int, POSITIVE, check(lambda v: v >= 3, "must be >= 3 ([CLS] text [SEP])")
    ] = 128

    @model_validator(mode="after")
    def _one_source(self) -> TokenizerConfig:
        if self.from_teacher and self.path is not None:
            raise ConfigError("'tokenizer.path': cannot be combined with tokenizer.from_teacher")
        return self


class OptimConfig(Section):
    epochs: Annotated[int, POSITIVE] = 10
    lr: Annotated[Number, POSITIVE] = 3e-4
    weight_decay: Number = 0.01
    warmup_ratio: Annotated[Number, FRACTION] = 0.0
    schedule: Annotated[str, one_of(SCHEDULES)] = "constant"
    grad_clip: Number | None = None
    hflip: bool = False  # horizontal flips of training images
    # random resized crops keeping ≥ this area share (1 = off)
    crop_min_scale: Annotated[
        Number, check(lambda v: 0.0 < v <= 1.0, "must be in (0, 1], got {value}")
    ] = 1.0
    # Share of training samples whose text is replaced by the service's empty-text fallback,
    # so the image branch must learn on its own instead of leaning on the text that fits first.
    text_dropout: Annotated[Number, FRACTION] = 0.0
    # Weights of the unimodal CE terms added to every batch's loss (models.training.unimodal):
    # image only (the empty-text row) and text only (a black image); 0 = off.
    image_only_loss: Annotated[Number, NON_NEGATIVE] = 0.0
    text_only_loss: Annotated[Number, NON_NEGATIVE] = 0.0
    # "balanced" weights each class's CE by N / (K · n_c): models are selected on macro-F1.
    class_weighting: Annotated[str, one_of(CLASS_WEIGHTINGS)] = "none"
    # Which epoch is kept: "best" dev mean macro-F1, or "last" (a fixed recipe, nothing picked
    # on the small dev split).
    select: Annotated[str, one_of(SELECTIONS)] = "best"
    # Learning rate of the image backbone (a pretrained one fine-tunes below the fresh layers'
    # rate); None = lr.
    vision_lr: Annotated[Number, POSITIVE] | None = None

    @property
    def augments_images(self) -> bool:
        """Whether training pixels differ between epochs (teacher outputs cannot be cached)."""
        return self.hflip or self.crop_min_scale < 1.0


class DistillConfig(Section):
    teacher_checkpoint: str
    loss: Annotated[str, one_of(LOSS_TYPES)] = "combined"
    alpha: Number = 1.0  # KL weight (CE weight is fixed at 1, as in the research code)
    beta: Number = 1.0  # feature MSE weight
    gamma: Number = 0.1  # contrastive (InfoNCE) weight
    temperature: Number = 4.0  # KD temperature T
    contrastive_temperature: Number = 0.1
    # "augmented": the teacher sees each step's flipped/cropped pixels (exact, a teacher
    # forward per step); "clean": its outputs on the unaugmented training images are computed
    # once before the first epoch (offline distillation, several times cheaper on CPU).
    teacher_views: Annotated[str, one_of(TEACHER_VIEWS)] = "augmented"
    # KD weight on the student's image-only view (its image + the empty-text fallback) toward
    # the teacher's own image-only answer (its image + its fallback), computed once on clean
    # images; an exported teacher only. The served image-only answer is what late fusion reads
    # for a task the photo decides, and a larger image branch reads the photo better.
    image_only_alpha: Annotated[Number, NON_NEGATIVE] = 0.0


class InitConfig(Section):
    text_weights: str | None = None  # local BERT-family weights (path or pkg:<package>/<file>)
    freeze_text: bool = False  # keep the text backbone fixed (eval mode, no gradients)
    # Word-embedding table of wider pretrained weights (same vocabulary), reduced by PCA to the
    # student's width: pretrained lexical structure for a small from-scratch text encoder.
    text_embeddings: str | None = None
    # Keep the word-embedding table fixed (its init, e.g. the PCA of MiniLM's): most of a small
    # student's parameters, and the part that memorises the training captions.
    freeze_word_embeddings: bool = False
    # Start from a trained checkpoint of the same model config (fine-tuning; e.g. one rebuilt
    # from a bundle by models.export.recover) instead of a fresh initialisation.
    checkpoint: str | None = None
    # Pretrained CNN image branch (EfficientNet-Lite): "frozen" keeps every BatchNorm's ImageNet
    # statistics (eval mode; scale and shift still train): batches of 32 small, grey or close-up
    # images would drag the running means away from what the early filters were fitted with.
    vision_bn: Annotated[str, one_of(("train", "frozen"))] = "train"
    # Keep the stem and the first N blocks of an EfficientNet-Lite fixed: generic edge and
    # texture filters that ~2k images cannot improve, and most of the backward pass's cost.
    freeze_vision_blocks: Annotated[int, NON_NEGATIVE] = 0

    @model_validator(mode="after")
    def _compatible(self) -> InitConfig:
        if self.checkpoint is not None and (
            self.text_weights is not None or self.text_embeddings is not None
        ):
            raise ConfigError(
                "'init.checkpoint': cannot be combined with init.text_weights or "
                "init.text_embeddings (the checkpoint holds every weight)"
            )
        if self.freeze_text and self.text_weights is None:
            raise ConfigError(
                "'init.freeze_text': needs 'init.text_weights' (a frozen random encoder)"
            )
        if self.text_embeddings is not None and self.text_weights is not None:
            raise ConfigError("'init.text_embeddings': cannot be combined with init.text_weights")
        return self


class VisionPretrainConfig(Section):
    """Image-only stage before the fused training (see models.training.vision_pretrain)."""

    epochs: int
    lr: Number = 2e-3
    weight_decay: Number = 0.05
    warmup_ratio: Annotated[Number, FRACTION] = 0.05

    @model_validator(mode="after")
    def _positive(self) -> VisionPretrainConfig:
        if self.epochs <= 0 or self.lr <= 0:
            raise ConfigError("'pretrain_vision.epochs' and '.lr': must be > 0")
        return self


class EnsembleConfig(Section):
    """One member per seed, served as one model (see models.training.ensemble)."""

    seeds: list[int]
    # each member answers with the geometric mean of its fused answer and its answer to the
    # same image with the empty-text fallback (models.ensemble.SeedEnsemble)
    image_vote: bool = False

    @model_validator(mode="after")
    def _distinct_seeds(self) -> EnsembleConfig:
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"'ensemble.seeds': needs 2 or more different seeds, got {self.seeds}"
            )
        return self


class LateFusionConfig(Section):
    """A bag-of-words text model beside the network; each task's answer weighs the network's
    fused answer, its image-only answer and the text model (see models.late_fusion)."""

    # inverse L2 strengths of the text model, chosen per task by grouped k-fold CV on train+dev
    text_c: list[float] = Field(default_factory=lambda: [1.0, 3.0, 10.0])
    folds: int = 5
    # candidate (fused, image, text) weights per task, chosen by k-fold CV on dev
    variants: list[tuple[float, float, float]] = Field(
        default_factory=lambda: [
            (1.0, 0.0, 0.0),  # the network as trained
            (0.0, 1.0, 1.0),  # photo and words, no cross-attention
            (1.0, 0.0, 1.0),
            (1.0, 1.0, 1.0),
            (0.0, 0.0, 1.0),  # the words alone
            (0.0, 1.0, 0.0),  # the photo alone
        ]
    )

    @model_validator(mode="after")
    def _usable(self) -> LateFusionConfig:
        if not self.text_c or any(c <= 0 for c in self.text_c):
            raise ConfigError("'late_fusion.text_c': needs one or more values > 0")
        if self.folds < 2:
            raise ConfigError(f"'late_fusion.folds': needs >= 2, got {self.folds}")
        if not self.variants or any(min(v) < 0 or sum(v) <= 0 for v in self.variants):
            raise ConfigError("'late_fusion.variants': weights >= 0, at least one > 0 each")
        return self
