"""MultiTaskModel: output contract, research layout and exact research parameter counts."""

from __future__ import annotations

import pytest
import torch

from models.config import ModelConfig
from models.fusion import FUSIONS
from models.multitask import MultiTaskModel, count_parameters
from tests.models.tiny_configs import TINY_MOBILEVIT, tiny_batch, tiny_config

BASE_KEYS = {"logits_modality", "logits_location", "img_raw", "txt_raw", "img_proj", "txt_proj"}


@pytest.mark.parametrize(
    ("vision", "image_size", "vis_dim"), [(None, 32, 32), (TINY_MOBILEVIT, 64, 40)]
)
def test_forward_keys_and_shapes(vision: dict | None, image_size: int, vis_dim: int) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(num_classes=(10, 3), **({"vision": vision} if vision else {}))
    model = MultiTaskModel(cfg).eval()
    with torch.no_grad():
        out = model(*tiny_batch(batch=3, image_size=image_size))
    assert set(out) == BASE_KEYS | {"modality_weights"}
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "logits_modality": (3, 10),
        "logits_location": (3, 3),
        "img_raw": (3, vis_dim),
        "txt_raw": (3, 24),
        "img_proj": (3, 16),
        "txt_proj": (3, 16),
        "modality_weights": (3, 2),
    }
    torch.testing.assert_close(out["img_proj"], model.proj_vis(out["img_raw"]))


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_modality_weights_present_exactly_for_attention_fusions(fusion: str) -> None:
    model = MultiTaskModel(tiny_config(fusion_type=fusion, fusion_layers=2)).eval()
    with torch.no_grad():
        out = model(*tiny_batch())
    assert model.has_modality_weights == FUSIONS[fusion].has_modality_weights
    assert ("modality_weights" in out) == model.has_modality_weights


def test_eval_forward_is_deterministic_and_batch_independent() -> None:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config(fusion_type="energy_aware_adaptive")).eval()
    pixels, ids, mask = tiny_batch(batch=4)
    with torch.no_grad():
        first = model(pixels, ids, mask)
        second = model(pixels, ids, mask)
        alone = model(pixels[2:3], ids[2:3], mask[2:3])
    for key in first:
        assert torch.equal(first[key], second[key])
        torch.testing.assert_close(alone[key][0], first[key][2], atol=1e-5, rtol=1e-5)


def test_training_gradients_reach_both_backbones() -> None:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config()).train()
    out = model(*tiny_batch())
    (out["logits_modality"].sum() + out["logits_location"].sum()).backward()
    for name in (
        "vision.embeddings.patch_embeddings.projection.weight",
        "text.embeddings.word_embeddings.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_research_state_dict_layout() -> None:
    model = MultiTaskModel(tiny_config(num_classes=(2, 5)))
    sd = model.state_dict()
    assert {k.split(".")[0] for k in sd} == {
        "vision",
        "text",
        "proj_vis",
        "proj_txt",
        "fusion",
        "head_modality",
        "head_location",
    }
    assert sd["head_modality.head.1.weight"].shape == (2, 16)
    assert sd["head_location.head.1.weight"].shape == (5, 16)
    assert sd["proj_vis.weight"].shape == (16, 32)
    assert "fusion.cross_attn.in_proj_weight" in sd and "fusion.ffn.2.weight" in sd
    assert "text.pooler.dense.weight" in sd and "vision.pooler.dense.weight" in sd


def test_text_vocab_override() -> None:
    model = MultiTaskModel(tiny_config(text_vocab_size=333))
    assert model.text.get_input_embeddings().weight.shape[0] == 333


# Spec §2.6: research run artefacts' exact parameter counts.
RESEARCH_COUNTS = [
    ({"vision": "mobilevit-xx-small", "text": "bert-mini", "fusion_dim": 256}, 13_061_111),
    ({"vision": "mobilevit-xx-small", "text": "bert-mini", "fusion_dim": 384}, 14_120_695),
    ({"vision": "vit-base", "text": "bio-clinical-bert", "fusion_dim": 256}, 195_884_807),
    (
        {
            "vision": "vit-base",
            "text": "bio-clinical-bert",
            "fusion_dim": 256,
            "num_classes": (10, 3),
        },
        195_886_349,
    ),
    ({"vision": "vit-base", "text": "bio-clinical-bert", "fusion_dim": 384}, 197_067_271),
    ({"vision": "deit-small", "text": "distilbert", "fusion_dim": 384}, 90_396_679),
]


@pytest.mark.parametrize(("kwargs", "expected"), RESEARCH_COUNTS)
def test_research_parameter_counts(kwargs: dict, expected: int) -> None:
    with torch.device("meta"):  # exact shapes without allocating 196 M parameters
        model = MultiTaskModel(ModelConfig(**kwargs))
    assert count_parameters(model) == expected


def test_research_student_really_builds_and_runs() -> None:
    """The headline student (13,061,111 params) on a real 224×224 batch."""
    torch.manual_seed(0)
    cfg = ModelConfig(vision="mobilevit-xx-small", text="bert-mini", fusion_dim=256)
    model = MultiTaskModel(cfg).eval()
    assert count_parameters(model) == 13_061_111
    pixels = torch.rand(2, 3, 224, 224) * 2 - 1
    ids = torch.randint(5, 30522, (2, 16))
    with torch.no_grad():
        out = model(pixels, ids, torch.ones_like(ids))
    assert out["img_raw"].shape == (2, 320) and out["logits_location"].shape == (2, 5)
