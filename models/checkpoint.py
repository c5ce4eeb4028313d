"""Checkpoints: our self-describing format, and strict loading of research plain state_dicts.

Our file (torch.save of a plain dict, loadable with ``weights_only=True``):
``{"format": 1, "state_dict", "model_config", **CheckpointMetadata.to_dict()}`` (task set, role,
tokenizer JSON, max text length, labels, training config, metrics); a seed ensemble
(models.ensemble) adds ``"ensemble": {"size", "image_vote"}`` and prefixes each member's keys
``members.<i>.`` (with the image vote, its ``empty_text_proj`` buffer is saved too).
Research ``.pth`` files are a bare state_dict without any config, so they need the ModelConfig
from the run's results.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.checkpoint_metadata import CheckpointMetadata
from models.config import ModelConfig
from models.ensemble import SeedEnsemble
from models.late_fusion import LateFusionModel, late_fusion_shape
from models.multitask import MultiTaskModel
from models.servable import ServableModel

CHECKPOINT_FORMAT = 1
_RESERVED = ("format", "state_dict", "model_config", "ensemble", "late_fusion")
# Non-persistent HF buffers that older transformers versions saved into state_dicts.
_TOLERATED_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_SHAPE_HINTS = {
    "head_modality.head.1.weight": "task-1 class count (dim 0)",
    "head_location.head.1.weight": "task-2 class count (dim 0)",
    "proj_vis.weight": "vision feature dim (dim 1) / fusion_dim (dim 0)",
    "proj_txt.weight": "text feature dim (dim 1) / fusion_dim (dim 0)",
    "text.embeddings.word_embeddings.weight": "text vocab size (dim 0)",
}


class CheckpointMismatchError(ValueError):
    """The state_dict does not fit the model built from the config (keys or shapes)."""


def _tolerated(key: str) -> bool:
    return key.endswith(_TOLERATED_BUFFER_SUFFIXES)


def _listing(keys: list[str], limit: int = 20) -> str:
    more = f" … (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_state_dict_compat(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Strictly load `state_dict` into `model`, tolerating only the HF embedding index buffers
    (``text.embeddings.position_ids`` / ``token_type_ids``) that differ across transformers
    versions. Any other missing/unexpected key or shape difference raises
    CheckpointMismatchError naming the keys (and what a shape usually means)."""
    own = model.state_dict()
    sd = {k: v for k, v in state_dict.items() if not (_tolerated(k) and k not in own)}
    for key, value in own.items():
        if _tolerated(key) and key not in sd:
            sd[key] = value
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    for key in sorted(set(own) & set(sd)):
        if tuple(sd[key].shape) != tuple(own[key].shape):
            hint = _SHAPE_HINTS.get(key)
            problems.append(
                f"shape mismatch for {key}: checkpoint {tuple(sd[key].shape)} vs model "
                f"{tuple(own[key].shape)}" + (f" ({hint})" if hint else "")
            )
    if problems:
        raise CheckpointMismatchError(
            "checkpoint does not match the model config:\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(sd, strict=True)


def save_checkpoint(
    path: str | Path,
    model: ServableModel,
    cfg: ModelConfig,
    metadata: CheckpointMetadata | Mapping[str, Any],
) -> None:
    """Write our checkpoint format (a plain mapping is read as CheckpointMetadata first)."""
    if not isinstance(metadata, CheckpointMetadata):
        metadata = CheckpointMetadata.from_dict(metadata)
    extra = metadata.to_dict()
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"metadata may not contain reserved keys {clash}")
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": cfg.to_dict(),
        **extra,
    }
    if isinstance(model, SeedEnsemble):
        payload["ensemble"] = {"size": model.size, "image_vote": model.image_vote}
    if isinstance(model, LateFusionModel):
        payload["late_fusion"] = late_fusion_shape(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[MultiTaskModel, ModelConfig, CheckpointMetadata]:
    """Load our format → (one model in eval mode, its config, its metadata); an ensemble is
    refused (training, distillation and recovery need one network): see load_servable."""
    model, cfg, metadata = load_servable(path, map_location)
    if isinstance(model, SeedEnsemble):
        raise ValueError(
            f"{path} is a seed ensemble of {model.size} members, not one model: train, "
            "distil or fine-tune from one of its members' checkpoints"
        )
    if isinstance(model, LateFusionModel):
        raise ValueError(
            f"{path} is a network late-fused with a text model, not one model: train, "
            "distil or fine-tune from its network's checkpoint"
        )
    return model, cfg, metadata


def load_servable(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[ServableModel, ModelConfig, CheckpointMetadata]:
    """Load our format, a single model or a seed ensemble → (model in eval mode, config,
    metadata): what export and evaluation accept."""
    payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "model_config" not in payload:
        raise ValueError(
            f"{path} is not a fusionserve checkpoint (no model_config); a research plain "
            "state_dict needs load_research_checkpoint(path, cfg)"
        )
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {payload.get('format')!r}")
    try:
        metadata = CheckpointMetadata.from_dict(
            {k: v for k, v in payload.items() if k not in _RESERVED}
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    cfg = ModelConfig.from_dict(payload["model_config"])
    ensemble, late = payload.get("ensemble"), payload.get("late_fusion")
    model: ServableModel = MultiTaskModel(cfg)
    if ensemble is not None:
        model = SeedEnsemble(cfg, int(ensemble["size"]), bool(ensemble.get("image_vote")))
    elif late is not None:
        model = LateFusionModel(cfg, int(late["vocab_size"]))
    load_state_dict_compat(model, payload["state_dict"])
    model.eval()
    return model, cfg, metadata


def load_research_checkpoint(
    path: str | Path, cfg: ModelConfig, map_location: str | torch.device = "cpu"
) -> MultiTaskModel:
    """Load a research ``teacher_*.pth`` / ``student_*.pth`` (bare fp32 state_dict, i.e.
    ``torch.save(model.state_dict())``) into a model built from `cfg` (from the run's YAML or
    results.json), in eval mode. Anything else is a ValueError saying what the file is."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        state_dict = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle, zip and weights-only errors alike
        raise ValueError(f"{path}: not a loadable torch checkpoint: {exc}") from None
    bare = isinstance(state_dict, Mapping) and all(
        isinstance(v, Tensor) for v in state_dict.values()
    )
    if not bare:
        hint = (
            " (a fusionserve checkpoint: use `fusionserve export`)"
            if isinstance(state_dict, Mapping) and "model_config" in state_dict
            else ""
        )
        raise ValueError(f"{path} is not a plain state_dict (name → tensor){hint}")
    model = MultiTaskModel(cfg)
    load_state_dict_compat(model, state_dict)
    model.eval()
    return model
