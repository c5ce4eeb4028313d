"""The student or teacher network before its first step: the config's model section
completed from the data, seeded initialisation, pretrained weights and frozen parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint
from models.config import ModelConfig
from models.efficientnet_lite import EfficientNetLite
from models.multitask import MultiTaskModel
from models.training.config import ConfigError, InitConfig, TrainConfig
from models.training.prepare import PreparedData
from models.training.pretrained import (
    freeze,
    load_text_weights,
    load_vision_weights,
    resolve_path,
    seed_word_embeddings,
    word_embeddings,
)


@dataclass
class BuiltModel:
    model: MultiTaskModel
    frozen: list[torch.nn.Module] = field(default_factory=list)  # kept in eval mode

    @property
    def cfg(self) -> ModelConfig:
        return self.model.cfg

    @property
    def class_counts(self) -> tuple[int, int]:
        return self.cfg.num_classes[0], self.cfg.num_classes[1]


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


def build_model(mcfg: ModelConfig, init: InitConfig) -> BuiltModel:
    """A fresh model (from the global torch RNG) with the `init` section applied."""
    built = BuiltModel(MultiTaskModel(mcfg))
    if init.checkpoint is not None:
        load_trained_weights(built.model, resolve_path(init.checkpoint, "init.checkpoint"))
    else:
        load_vision_weights(built.model)
    text = built.model.text
    if init.text_weights is not None:
        load_text_weights(text, resolve_path(init.text_weights, "init.text_weights"))
    if init.text_embeddings is not None:
        seed_word_embeddings(text, resolve_path(init.text_embeddings, "init.text_embeddings"))
    if init.freeze_word_embeddings:
        freeze(word_embeddings(text))
    if init.freeze_text:
        freeze(text)
        built.frozen.append(text)
    built.frozen += vision_fixed_parts(built.model.vision, init)
    return built


def vision_fixed_parts(vision: torch.nn.Module, init: InitConfig) -> list[torch.nn.Module]:
    """The image branch's parts kept in eval mode: the frozen EfficientNet-Lite prefix (no
    gradients either) and, with vision_bn "frozen", every BatchNorm."""
    fixed: list[torch.nn.Module] = []
    if init.freeze_vision_blocks:
        if not isinstance(vision, EfficientNetLite):
            raise ConfigError("'init.freeze_vision_blocks' needs an efficientnet-lite vision")
        fixed += [vision._conv_stem, vision._bn0, *vision._blocks[: init.freeze_vision_blocks]]
        for module in fixed:
            freeze(module)
    if init.vision_bn == "frozen":
        fixed += [m for m in vision.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return fixed


def load_trained_weights(model: MultiTaskModel, path: Path) -> None:
    """Copy a trained checkpoint's weights into `model`; its model config must be the same."""
    trained, trained_cfg, _meta = load_checkpoint(path)
    if trained_cfg.to_dict() != model.cfg.to_dict():
        raise ConfigError(
            f"'init.checkpoint': {path} has another model config than this run's 'model' "
            "section (with the data's class counts and vocabulary size)"
        )
    model.load_state_dict(trained.state_dict())
