"""ModelConfig: validation errors and the plain-dict round trip used by YAML/JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.config import ModelConfig
from tests.models.tiny_configs import TINY_BERT, TINY_VIT


def test_defaults_are_the_research_student_layout() -> None:
    cfg = ModelConfig(vision="mobilevit-xx-small", text="bert-mini", fusion_dim=256)
    assert cfg.fusion_type == "cross_attention"
    assert (cfg.fusion_heads, cfg.fusion_layers, cfg.dropout) == (8, 1, 0.1)
    assert cfg.num_classes == (2, 5)
    assert cfg.fusion_params == {} and cfg.text_vocab_size is None


def test_round_trip_through_json() -> None:
    cfg = ModelConfig(
        vision=TINY_VIT,
        text=TINY_BERT,
        fusion_dim=16,
        fusion_type="shomr",
        fusion_heads=4,
        fusion_params={"dropout": 0.2},
        num_classes=(10, 3),
        text_vocab_size=99,
    )
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["num_classes"] == [10, 3]
    assert ModelConfig.from_dict(d) == cfg


def test_research_fusion_spellings_are_canonicalised() -> None:
    cfg = ModelConfig(vision="deit-tiny", text="bert-tiny", fusion_dim=64, fusion_type="FiLMFusion")
    assert cfg.fusion_type == "film"


def test_config_does_not_alias_caller_dicts() -> None:
    vision = dict(TINY_VIT)
    cfg = ModelConfig(vision=vision, text=TINY_BERT, fusion_dim=16, fusion_heads=4)
    vision["hidden_size"] = 64
    assert isinstance(cfg.vision, dict) and cfg.vision["hidden_size"] == 32


BASE: dict[str, Any] = {"vision": "deit-tiny", "text": "bert-mini", "fusion_dim": 64}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fusion_type": "simple"}, "valid: cross_attention"),
        ({"fusion_type": "mystery"}, "unknown fusion type"),
        ({"fusion_dim": 60}, "divisible"),
        ({"fusion_dim": 0}, "fusion_dim"),
        ({"fusion_layers": 0}, "fusion_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_classes": (2,)}, "num_classes"),
        ({"num_classes": (2, 1)}, "num_classes"),
        ({"fusion_params": {"p_image": 0.2}}, "p_image"),
        ({"vision": "vit-huge"}, "unknown vision backbone 'vit-huge'"),
        ({"vision": "bert-mini"}, "unknown vision backbone"),
        ({"text": "mobilevit-small"}, "unknown text backbone"),
        ({"vision": "mobilevit_xx_small"}, "valid names"),  # log-file spelling is not a key
        ({"vision": {"type": "efficientnet"}}, "needs 'type'"),
        ({"vision": {"type": "vit", "hiden_size": 8}}, "hiden_size"),
        ({"text_vocab_size": 0}, "text_vocab_size"),
    ],
)
def test_invalid_configs_fail_with_clear_messages(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{**BASE, **change})


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match="fusion_dimm"):
        ModelConfig.from_dict({**BASE, "fusion_dimm": 3})
    with pytest.raises(ValueError, match="missing"):
        ModelConfig.from_dict({"vision": "deit-tiny", "text": "bert-mini"})
