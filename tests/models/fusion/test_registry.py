"""Registry lookup: research spellings accepted, `simple`/unknown names and bad params refused."""

from __future__ import annotations

import pytest

from models.fusion import (
    FUSIONS,
    CrossAttentionFusion,
    build_fusion,
    canonical_fusion_name,
    valid_fusion_names,
)


@pytest.mark.parametrize(
    "spelling", ["cross_attention", "cross-attention", "CrossAttentionFusion", "CROSS_ATTENTION"]
)
def test_research_spellings_resolve(spelling: str) -> None:
    assert canonical_fusion_name(spelling) == "cross_attention"
    assert isinstance(build_fusion(spelling, 16, 4, 1, {}), CrossAttentionFusion)


def test_every_class_name_resolves_to_its_key() -> None:
    for key, cls in FUSIONS.items():
        assert canonical_fusion_name(cls.__name__) == key


@pytest.mark.parametrize("name", ["simple", "SimpleFusion", "attention", ""])
def test_simple_and_unknown_names_fail_listing_valid_ones(name: str) -> None:
    with pytest.raises(ValueError) as err:
        build_fusion(name, 16, 4, 1, {})
    for valid in valid_fusion_names():
        assert valid in str(err.value)


def test_simple_gets_a_specific_explanation() -> None:
    with pytest.raises(ValueError, match="'simple' is not supported"):
        canonical_fusion_name("simple")


def test_dim_must_divide_by_heads_for_attention_fusions() -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_fusion("cross_attention", 30, 8, 1, {})
    build_fusion("gated", 30, 8, 1, {})  # no heads used: any dim is fine


def test_unknown_fusion_params_rejected_research_section_keys_accepted() -> None:
    with pytest.raises(ValueError, match="hiden_mult"):
        build_fusion("concat_mlp", 16, 4, 2, {"hiden_mult": 3})
    research_section = {"type": "concat_mlp", "hidden_mult": 3, "dropout": 0.2, "num_moments": 4}
    fusion = build_fusion("concat_mlp", 16, 4, 2, research_section)
    assert fusion.state_dict()["mlp.0.weight"].shape == (48, 32)


def test_layers_are_ignored_where_research_ignored_them() -> None:
    one = build_fusion("cross_attention", 16, 4, 1, {})
    three = build_fusion("cross_attention", 16, 4, 3, {})
    assert one.state_dict().keys() == three.state_dict().keys()
