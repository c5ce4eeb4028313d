"""Backbone presets (research names → configs) and feature extraction."""

from __future__ import annotations

import pytest
import torch

from models.backbones import (
    TEXT_PRESETS,
    VISION_PRESETS,
    build_text,
    build_vision,
    feature_dim,
    text_features,
    vision_features,
)
from tests.models.tiny_configs import TINY_BERT, TINY_MOBILEVIT, TINY_VIT, tiny_batch

# Feature dims of docs/spec.md §3.1.
VISION_DIMS = {
    "vit-large": 1024,
    "vit-base": 768,
    "deit-base": 768,
    "deit-small": 384,
    "deit-tiny": 192,
    "mobilevit-xx-small": 320,
    "mobilevit-x-small": 384,
    "mobilevit-small": 640,
}
TEXT_DIMS = {
    "bio-clinical-bert": 768,
    "distilbert": 768,
    "mobile-bert": 512,
    "bert-tiny": 128,
    "bert-mini": 256,
    "minilm": 384,
    "bert-base-uncased": 768,  # beyond the research map: the flagship import teacher's text
}
# Exact parameter counts from docs/spec.md §2.6 (ViT/BERT incl. pooler).
PARAM_COUNTS = {
    "vit-base": 86_389_248,
    "deit-small": 21_813_504,
    "mobilevit-xx-small": 951_024,
    "bio-clinical-bert": 108_310_272,
    "bert-mini": 11_170_560,
    "distilbert": 66_362_880,
    "bert-base-uncased": 109_482_240,  # the published bert-base-uncased count (with pooler)
}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_presets_cover_the_research_names() -> None:
    assert set(VISION_PRESETS) == set(VISION_DIMS)
    assert set(TEXT_PRESETS) == set(TEXT_DIMS)


@pytest.mark.parametrize("name", sorted(VISION_DIMS))
def test_vision_preset_feature_dims(name: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        assert feature_dim(build_vision(name)) == VISION_DIMS[name]


@pytest.mark.parametrize("name", sorted(TEXT_DIMS))
def test_text_preset_feature_dims(name: str) -> None:
    with torch.device("meta"):
        assert feature_dim(build_text(name)) == TEXT_DIMS[name]


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_preset_parameter_counts_match_research(name: str) -> None:
    with torch.device("meta"):
        model = build_vision(name) if name in VISION_PRESETS else build_text(name)
    assert n_params(model) == PARAM_COUNTS[name]


def test_research_vit_and_bert_keep_their_poolers() -> None:
    with torch.device("meta"):
        assert "pooler.dense.weight" in build_vision("vit-base").state_dict()
        assert "pooler.dense.weight" in build_text("bert-mini").state_dict()


def test_vocab_override() -> None:
    with torch.device("meta"):
        text = build_text("bio-clinical-bert", vocab_size=5000)
    assert text.state_dict()["embeddings.word_embeddings.weight"].shape == (5000, 768)


def test_custom_pooler_can_be_dropped() -> None:
    vit = build_vision({**TINY_VIT, "add_pooling_layer": False})
    assert not any(k.startswith("pooler") for k in vit.state_dict())


def test_vit_feature_is_the_cls_token_not_the_pooler() -> None:
    torch.manual_seed(0)
    vit = build_vision(TINY_VIT).eval()
    pixels, _, _ = tiny_batch()
    with torch.no_grad():
        out = vit(pixel_values=pixels)
        feats = vision_features(vit, pixels)
    torch.testing.assert_close(feats, out.last_hidden_state[:, 0])
    assert not torch.allclose(feats, out.pooler_output)


def test_mobilevit_feature_is_the_global_average_pool() -> None:
    torch.manual_seed(0)
    mvit = build_vision(TINY_MOBILEVIT).eval()
    pixels, _, _ = tiny_batch(image_size=64)
    with torch.no_grad():
        out = mvit(pixel_values=pixels)
        feats = vision_features(mvit, pixels)
    assert out.last_hidden_state.dim() == 4 and feats.shape == (3, 40)
    torch.testing.assert_close(feats, out.last_hidden_state.mean(dim=(2, 3)))
    torch.testing.assert_close(feats, out.pooler_output)


def test_resnet_feature_is_the_global_average_pool() -> None:
    torch.manual_seed(0)
    spec = {"type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]}
    cnn = build_vision(spec).eval()
    pixels, _, _ = tiny_batch(image_size=64)
    with torch.no_grad():
        out = cnn(pixel_values=pixels)
        feats = vision_features(cnn, pixels)
    assert feature_dim(cnn) == 16 and feats.shape == (3, 16)
    torch.testing.assert_close(feats, out.pooler_output.flatten(1))


@pytest.mark.parametrize(
    "spec",
    [
        TINY_BERT,
        {
            "type": "distilbert",
            "dim": 24,
            "n_layers": 1,
            "n_heads": 2,
            "hidden_dim": 48,
            "vocab_size": 120,
        },
    ],
)
def test_text_feature_is_the_cls_token_and_respects_the_mask(spec: dict) -> None:
    torch.manual_seed(0)
    text = build_text(spec).eval()
    _, ids, mask = tiny_batch()
    with torch.no_grad():
        feats = text_features(text, ids, mask)
        torch.testing.assert_close(
            feats, text(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        )
        # padding positions are masked: changing their ids does not change sample 0
        ids2 = ids.clone()
        ids2[0, mask[0] == 0] = 7
        torch.testing.assert_close(text_features(text, ids2, mask)[0], feats[0])
    assert feats.shape == (3, 24)
