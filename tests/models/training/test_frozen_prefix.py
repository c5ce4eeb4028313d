"""The memoised frozen prefix gives the network's own answer, and computes each image once."""

from __future__ import annotations

import torch

from models.efficientnet_lite import EfficientNetLite
from models.training.frozen_prefix import attach, detach


def test_memoised_prefix_equals_the_plain_forward_and_is_reused() -> None:
    torch.manual_seed(0)
    vision = EfficientNetLite("efficientnet-lite0")
    vision.eval()
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        plain = vision(x)
    memo = attach(vision, 11)
    assert memo is not None
    with torch.no_grad():
        first = vision(x)
        second = vision(torch.cat([x[:2], torch.randn(1, 3, 64, 64)]))
    assert torch.allclose(first, plain, atol=1e-6)
    assert torch.allclose(second[:2], plain[:2], atol=1e-6)
    assert (memo.misses, memo.hits) == (6, 2)
    detach(vision)
    assert vision.prefix_cache is None
    assert not any("prefix" in k for k in vision.state_dict())


def test_gradients_reach_the_trainable_tail_only() -> None:
    vision = EfficientNetLite("efficientnet-lite0")
    attach(vision, 11)
    vision(torch.randn(2, 3, 64, 64)).sum().backward()
    assert vision._blocks[0]._depthwise_conv.weight.grad is None
    assert vision._blocks[11]._depthwise_conv.weight.grad is not None
