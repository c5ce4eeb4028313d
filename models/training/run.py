"""Train one model from a TrainConfig: a teacher on CE, or a student distilled from a frozen
teacher checkpoint. Writes `<out>/best.pt` (models.checkpoint format, with the tokenizer JSON,
max text length, label maps and training config) and `<out>/metrics.json` next to it."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from models.checkpoint import load_checkpoint, save_checkpoint
from models.config import ModelConfig
from models.multitask import MultiTaskModel, count_parameters
from models.training.config import ConfigError, DistillConfig, TrainConfig
from models.training.evaluate import evaluate
from models.training.losses import (
    ClassWeights,
    FeatureProjector,
    LossWeights,
    balanced_class_weights,
    ce_loss,
    distill_loss,
)
from models.training.metrics import split_metrics
from models.training.prepare import PreparedData, encode_like, prepare_data
from models.training.pretrained import (
    freeze,
    load_text_weights,
    resolve_path,
    seed_word_embeddings,
    word_embeddings,
)
from models.training.teacher_bundle import BundleTeacher, CachedTeacherLogits, is_bundle
from models.training.teacher_outputs import TeacherOutputs
from models.training.tensors import Batch
from models.training.trainer import LossFn, fit, write_metrics
from models.training.unimodal import UnimodalLoss
from models.training.vision_pretrain import pretrain_vision

CHECKPOINT_NAME = "best.pt"
METRICS_NAME = "metrics.json"
TOKENIZER_NAME = "tokenizer.json"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_config(cfg: TrainConfig, data: PreparedData) -> ModelConfig:
    """The config's model section completed from the data: class counts and vocab size."""
    raw = dict(cfg.model)
    raw["num_classes"] = [len(data.spec.labels(t)) for t in data.spec.task_names]
    raw["text_vocab_size"] = int(data.tokenizer.get_vocab_size())
    text = raw.get("text")
    if isinstance(text, dict):
        positions = int(text.get("max_position_embeddings", 512))
        if positions < data.max_length:
            raise ConfigError(
                f"'model.text.max_position_embeddings' ({positions}) < "
                f"'tokenizer.max_length' ({data.max_length})"
            )
    try:
        return ModelConfig.from_dict(raw)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"'model': {exc}") from None


def load_teacher(distill: DistillConfig, task_set: str) -> tuple[Any, dict[str, Any]]:
    path = Path(distill.teacher_checkpoint)
    if not path.is_file():
        raise ConfigError(
            f"'distill.teacher_checkpoint': file not found: {path.resolve()} "
            "(train the teacher first)"
        )
    teacher, _cfg, extra = load_checkpoint(path)
    if extra.get("task_set") != task_set:
        raise ConfigError(
            f"'distill.teacher_checkpoint': teacher task set {extra.get('task_set')!r} "
            f"!= data.type {task_set!r}"
        )
    return teacher, extra


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


def bundle_distillation(
    cfg: TrainConfig, data: PreparedData, teacher: BundleTeacher, class_weights: ClassWeights
) -> tuple[LossFn, dict[str, object]]:
    """Loss with KD toward the bundle's logits (computed once, clean images), and the
    bundle's dev metrics."""
    assert cfg.distill is not None
    d = cfg.distill
    t_data = encode_like(
        data, teacher.tokenizer, teacher.max_length, teacher.image_size, cfg.data.cache_dir
    )
    bs = cfg.data.batch_size
    cached = CachedTeacherLogits(teacher.logits(teacher.probabilities(t_data.train, bs)))
    dev_probs = teacher.probabilities(t_data.dev, bs)
    truth = [t_data.dev.labels[:, 0].numpy(), t_data.dev.labels[:, 1].numpy()]
    teacher_dev = split_metrics(data.spec.task_names, truth, dev_probs)
    weights = LossWeights(d.loss, d.alpha, temperature=d.temperature, class_weights=class_weights)

    def loss_fn(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
        t = cached.for_batch(b) if weights.kind != "ce" else None
        return distill_loss(weights, o, t, b.labels, None)

    return loss_fn, teacher_dev


def with_unimodal_loss(loss_fn: LossFn, unimodal: UnimodalLoss) -> LossFn:
    """`loss_fn` plus the image-only and text-only CE terms (logged as "unimodal")."""

    def combined(out: dict[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, parts = loss_fn(out, batch)
        extra = unimodal(out, batch.labels)
        return loss + extra, {**parts, "unimodal": float(extra.detach())}

    return combined


def train_model(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run training end to end; returns the metrics.json payload."""
    if epochs is not None:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=epochs))
    out = Path(out_dir if out_dir is not None else cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)

    teacher = teacher_extra = bundle_teacher = None
    if cfg.distill is not None and is_bundle(cfg.distill.teacher_checkpoint):
        bundle_teacher = load_bundle_teacher(cfg)
    elif cfg.distill is not None:
        teacher, teacher_extra = load_teacher(cfg.distill, cfg.data.type)
    tokenizer = max_length = None
    if cfg.tokenizer.from_teacher and teacher_extra is not None:
        tokenizer = Tokenizer.from_str(teacher_extra["tokenizer_json"])
        max_length = int(teacher_extra["max_text_length"])
    if cfg.tokenizer.from_teacher and bundle_teacher is not None:
        tokenizer, max_length = bundle_teacher.tokenizer, bundle_teacher.max_length
    data = prepare_data(cfg, limit, tokenizer, max_length)
    mcfg = model_config(cfg, data)
    seed_everything(cfg.seed)  # same init whatever data preparation consumed
    model = MultiTaskModel(mcfg)
    frozen: list[torch.nn.Module] = []
    if cfg.init.text_weights is not None:
        load_text_weights(model.text, resolve_path(cfg.init.text_weights, "init.text_weights"))
    if cfg.init.text_embeddings is not None:
        source = resolve_path(cfg.init.text_embeddings, "init.text_embeddings")
        seed_word_embeddings(model.text, source)
    if cfg.init.freeze_word_embeddings:
        freeze(word_embeddings(model.text))
    if cfg.init.freeze_text:
        freeze(model.text)
        frozen.append(model.text)
    task_names = data.spec.task_names
    bs = cfg.data.batch_size
    class_weights = (
        balanced_class_weights(data.train.labels, (mcfg.num_classes[0], mcfg.num_classes[1]))
        if cfg.optim.class_weighting == "balanced"
        else None
    )

    vision_history = None
    if cfg.pretrain_vision is not None:
        vision_history = pretrain_vision(
            model.vision,
            (mcfg.num_classes[0], mcfg.num_classes[1]),
            data.train,
            data.dev,
            task_names,
            cfg.pretrain_vision,
            cfg.optim,
            bs,
            cfg.seed,
            class_weights,
            progress,
        )

    projector: FeatureProjector | None = None
    if teacher is not None and teacher_extra is not None and cfg.distill is not None:
        t_data = encode_like(
            data,
            Tokenizer.from_str(teacher_extra["tokenizer_json"]),
            int(teacher_extra["max_text_length"]),
        )
        d = cfg.distill
        cached = not cfg.optim.augments_images or d.teacher_views == "clean"
        t_out = TeacherOutputs(teacher, t_data.train, bs, cached=cached)
        weights = LossWeights(
            d.loss,
            d.alpha,
            d.beta,
            d.gamma,
            d.temperature,
            d.contrastive_temperature,
            class_weights,
        )
        if d.loss == "combined":
            projector = FeatureProjector(
                teacher.proj_vis.in_features, teacher.proj_txt.in_features, mcfg.fusion_dim
            )
        teacher_dev = evaluate(teacher, t_data.dev, task_names, bs)

        def checkpoint_loss(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
            t = t_out.for_batch(b) if weights.kind != "ce" else None
            return distill_loss(weights, o, t, b.labels, projector)

        train_loss: LossFn = checkpoint_loss
    elif bundle_teacher is not None and cfg.distill is not None:
        train_loss, teacher_dev = bundle_distillation(cfg, data, bundle_teacher, class_weights)
    else:
        teacher_dev = None

        def label_loss(o: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, float]]:
            loss = ce_loss(o, b.labels, class_weights)
            return loss, {"ce": float(loss.detach())}

        train_loss = label_loss

    unimodal_weights = (cfg.optim.image_only_loss, cfg.optim.text_only_loss)
    if any(w > 0 for w in unimodal_weights) and data.train.empty_text is not None:
        train_loss = with_unimodal_loss(
            train_loss,
            UnimodalLoss(
                model,
                data.train.empty_text,
                cfg.data.image_size,
                unimodal_weights,
                class_weights,
            ),
        )

    labels = {t: list(data.spec.labels(t)) for t in task_names}
    training_config = {**cfg.to_dict(), "output_dir": str(out)}
    header: dict[str, Any] = {
        "name": cfg.name,
        "role": cfg.role,
        "task_set": cfg.data.type,
        "parameters": count_parameters(model),
        "train_samples": len(data.train),
        "dev_samples": len(data.dev),
        "max_text_length": data.max_length,
        "train_token_length_percentiles": data.token_lengths,
        "labels": labels,
        "training_config": training_config,
    }
    if teacher_dev is not None:
        header["teacher_dev"] = teacher_dev
    if vision_history is not None:
        header["vision_pretraining"] = vision_history
    (out / TOKENIZER_NAME).write_text(data.tokenizer.to_str(), encoding="utf-8")
    checkpoint = out / CHECKPOINT_NAME

    def save_best(record: dict[str, Any]) -> None:
        extra = {
            "task_set": cfg.data.type,
            "role": cfg.role,
            "tokenizer_json": data.tokenizer.to_str(),
            "max_text_length": data.max_length,
            "labels": labels,
            "training_config": training_config,
            "metrics": {"epoch": record["epoch"], "dev": record["dev"]},
        }
        save_checkpoint(checkpoint, model, mcfg, extra)

    print(
        f"{cfg.name}: {cfg.role} on {cfg.data.type}, {header['parameters']:,} parameters, "
        f"train {len(data.train)} / dev {len(data.dev)}, max_length {data.max_length}",
        flush=True,
    )
    started = time.perf_counter()
    result = fit(
        model,
        [projector] if projector is not None else [],
        data.train,
        data.dev,
        task_names,
        cfg.optim,
        bs,
        cfg.seed,
        train_loss,
        save_best,
        out / METRICS_NAME,
        header,
        progress,
        frozen,
    )
    best_model, _, _ = load_checkpoint(checkpoint)
    final_dev = evaluate(best_model, data.dev, task_names, bs)
    payload = {
        **header,
        "best_epoch": result.best_epoch,
        "best_dev_mean_macro_f1": result.best_score,
        "final_dev": final_dev,
        "checkpoint": str(checkpoint),
        "train_wall_s": round(time.perf_counter() - started, 1),
        "epochs": result.history,
    }
    write_metrics(out / METRICS_NAME, payload)
    print(json.dumps({"final_dev": final_dev}, indent=1), flush=True)
    return payload
