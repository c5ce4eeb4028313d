"""The training loss of one run: CE on the labels (teacher, label-only student), or KD toward
a checkpoint teacher (logits, and features through a projector) or a bundle teacher (logits),
plus the optional image-only and text-only CE terms and the image-only KD toward a bundle
teacher's image-only answer (`distill.image_only_alpha`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor, nn

from models.config import ModelConfig
from models.multitask import MultiTaskModel
from models.training.config import ConfigError, DistillConfig, TrainConfig
from models.training.evaluate import evaluate
from models.training.losses import (
    ClassWeights,
    FeatureProjector,
    LossWeights,
    ce_loss,
    distill_loss,
)
from models.training.metrics import split_metrics
from models.training.prepare import PreparedData, encode_like
from models.training.teacher_bundle import BundleTeacher, CachedTeacherLogits
from models.training.teacher_outputs import TeacherOutputs
from models.training.teachers import CheckpointTeacher, Teacher
from models.training.tensors import Batch
from models.training.trainer import LossFn
from models.training.unimodal import ImageOnlyTeacher, UnimodalLoss


@dataclass(frozen=True)
class Objective:
    loss_fn: LossFn
    extra_modules: list[nn.Module] = field(default_factory=list)  # trained with the model
    teacher_dev: dict[str, Any] | None = None  # the teacher's dev metrics (metrics.json)
    image_teacher: ImageOnlyTeacher | None = None  # KD target of the image-only view


def build_objective(
    cfg: TrainConfig,
    data: PreparedData,
    model: MultiTaskModel,
    teacher: Teacher | None,
    class_weights: ClassWeights,
) -> Objective:
    """The loss for `cfg`'s role and teacher, with the unimodal terms when configured."""
    if isinstance(teacher, CheckpointTeacher):
        objective = checkpoint_distillation(cfg, data, model.cfg, teacher, class_weights)
    elif isinstance(teacher, BundleTeacher):
        objective = bundle_distillation(cfg, data, teacher, class_weights)
    else:
        objective = Objective(label_loss(class_weights))
    return with_unimodal_terms(objective, cfg, data, model, class_weights)


def label_loss(class_weights: ClassWeights) -> LossFn:
    def loss_fn(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
        loss = ce_loss(o, b.labels, class_weights)
        return loss, {"ce": float(loss.detach())}

    return loss_fn


def distill_weights(d: DistillConfig, class_weights: ClassWeights) -> LossWeights:
    return LossWeights(
        d.loss, d.alpha, d.beta, d.gamma, d.temperature, d.contrastive_temperature, class_weights
    )


def checkpoint_distillation(
    cfg: TrainConfig,
    data: PreparedData,
    student: ModelConfig,
    teacher: CheckpointTeacher,
    class_weights: ClassWeights,
) -> Objective:
    """KD toward the checkpoint teacher's outputs on its own text encoding of each batch:
    cached once when the pixels never change (or the config asks for clean views)."""
    assert cfg.distill is not None
    d = cfg.distill
    if d.image_only_alpha > 0:
        raise ConfigError(
            "'distill.image_only_alpha': needs an exported teacher bundle (its served "
            "image-only answer), not a training checkpoint"
        )
    t_data = encode_like(data, teacher.tokenizer, teacher.max_length)
    cached = not cfg.optim.augments_images or d.teacher_views == "clean"
    bs = cfg.data.batch_size
    t_out = TeacherOutputs(teacher.model, t_data.train, bs, cached=cached)
    weights = distill_weights(d, class_weights)
    projector = None
    if d.loss == "combined":
        t = teacher.model
        projector = FeatureProjector(
            t.proj_vis.in_features, t.proj_txt.in_features, student.fusion_dim
        )
    teacher_dev = evaluate(teacher.model, t_data.dev, data.spec.task_names, bs)

    def loss_fn(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
        t = t_out.for_batch(b) if weights.kind != "ce" else None
        return distill_loss(weights, o, t, b.labels, projector)

    return Objective(loss_fn, [projector] if projector is not None else [], teacher_dev)


def bundle_distillation(
    cfg: TrainConfig, data: PreparedData, teacher: BundleTeacher, class_weights: ClassWeights
) -> Objective:
    """KD toward the bundle's logits (computed once, clean images), with the bundle's dev
    metrics; and toward its image-only logits for the image-only view when configured."""
    assert cfg.distill is not None
    d = cfg.distill
    t_data = encode_like(
        data, teacher.tokenizer, teacher.max_length, teacher.image_size, cfg.data.cache_dir
    )
    bs = cfg.data.batch_size
    weights = LossWeights(d.loss, d.alpha, temperature=d.temperature, class_weights=class_weights)
    cached = None  # the fused answers, only where the fused loss reads them ("ce" does not)
    if weights.kind != "ce":
        cached = CachedTeacherLogits(teacher.logits(teacher.probabilities(t_data.train, bs)))
    dev_probs = teacher.probabilities(t_data.dev, bs)
    truth = [t_data.dev.labels[:, 0].numpy(), t_data.dev.labels[:, 1].numpy()]
    teacher_dev = split_metrics(data.spec.task_names, truth, dev_probs)

    def loss_fn(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
        t = cached.for_batch(b) if cached is not None else None
        return distill_loss(weights, o, t, b.labels, None)

    image_teacher = None
    if d.image_only_alpha > 0:
        image_only = teacher.probabilities(t_data.train.image_only(), bs)
        image_teacher = ImageOnlyTeacher(
            CachedTeacherLogits(teacher.logits(image_only)), d.image_only_alpha, d.temperature
        )
    return Objective(loss_fn, teacher_dev=teacher_dev, image_teacher=image_teacher)


def with_unimodal_terms(
    objective: Objective,
    cfg: TrainConfig,
    data: PreparedData,
    model: MultiTaskModel,
    class_weights: ClassWeights,
) -> Objective:
    """`objective` plus the image-only and text-only CE terms and the image-only KD when
    configured and the data has an empty-text row to stand in for the missing text."""
    weights = (cfg.optim.image_only_loss, cfg.optim.text_only_loss)
    empty_text = data.train.empty_text
    teacher = objective.image_teacher
    if empty_text is None:
        if teacher is not None:
            raise ConfigError("'distill.image_only_alpha': the data has no empty-text row")
        return objective
    if not any(w > 0 for w in weights) and teacher is None:
        return objective
    unimodal = UnimodalLoss(model, empty_text, cfg.data.image_size, weights, class_weights, teacher)
    return replace(objective, loss_fn=with_unimodal_loss(objective.loss_fn, unimodal))


def with_unimodal_loss(loss_fn: LossFn, unimodal: UnimodalLoss) -> LossFn:
    """`loss_fn` plus the image-only and text-only CE terms and the image-only KD (logged
    together as "unimodal")."""

    def combined(out: dict[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, parts = loss_fn(out, batch)
        extra = unimodal(out, batch)
        return loss + extra, {**parts, "unimodal": float(extra.detach())}

    return combined
