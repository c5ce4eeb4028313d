"""The domain check's early-layer part (`early_image`): per-channel mean and root mean square of
an early block's activations, read from the model's own forward pass.

Why: the pooled last layer of an ImageNet backbone fine-tuned on one task set, and the global
input statistics, place some inputs among real images: white-on-black text screenshots near
CT slices (MedPix student), mid-grey blanks and salt-and-pepper noise near wound photos
(wound student). An early block sees strokes and texture, which these lack or overdo
(multi-layer Mahalanobis, Lee et al. 2018). Measured on the shipped students' train/dev and
the fixed synthetic set (never fitted on it): the pooled mean and std after stage 2 of
EfficientNet-Lite0 (24 channels at 1/4 resolution) flags all 16 synthetic images in both
task sets alone; stage 1 misses black images, stage 0 noise. (That was the pooled mean and
standard deviation; the root mean square holds the same information in 5 graph nodes, not 9:
the standard deviation's subtraction, clamp and correction are gone. The mean square itself,
without the root, reaches some 400 on the MedPix student's activations, where float32
rounding alone broke the export's 1e-4 parity bound against PyTorch.)

The block's output is taken by a forward hook, so the graph computes it once: the tap adds a
few reductions to the exported graph, not a second pass through the stem. Whole-map average
pools instead of the reductions cost the same and changed how onnxruntime laid out the
teachers' backbones: their probabilities moved 1.5-2.8e-4 from PyTorch's, beyond the export's
1e-4 parity bound.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from models.efficientnet_lite import EfficientNetLite, MBConv

TAPPED_STAGE = 1  # 0-based: EfficientNet's second stage (16 → 24 channels, stride 4)


def early_block(model: nn.Module) -> nn.Module | None:
    """The block whose output the check reads: the last block of `TAPPED_STAGE` of the first
    EfficientNet-Lite inside `model` (the network itself, a seed ensemble's first member, a
    late-fused network's image branch); None without one (the check has no early part)."""
    vision = next((m for m in model.modules() if isinstance(m, EfficientNetLite)), None)
    if vision is None:
        return None
    stage, last = -1, None
    for block in vision._blocks:
        assert isinstance(block, MBConv)
        if block.shape.in_ch != block.shape.out_ch or block.shape.stride != 1:
            stage += 1  # a stage opens where the shape changes
        if stage == TAPPED_STAGE:
            last = block
        elif stage > TAPPED_STAGE:
            break
    return last


class EarlyFeatures(nn.Module):
    """Hooks `block`; after each model forward, `forward()` → f32[B, 2·channels]: the block
    output's spatial mean and root mean square per channel."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self._seen: list[Tensor] = []
        # the block stays the model's: kept out of this module's children and state_dict
        self._handle: RemovableHandle = block.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: object, output: Tensor) -> None:
        self._seen[:] = [output]

    def forward(self) -> Tensor:
        if not self._seen:
            raise RuntimeError("the tapped block did not run in this forward pass")
        x = self._seen.pop()
        return torch.cat([x.mean(dim=(2, 3)), (x * x).mean(dim=(2, 3)).sqrt()], dim=1)

    def remove(self) -> None:
        self._handle.remove()
