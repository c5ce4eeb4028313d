"""Common interface of all fusion modules (kept apart from the registry to avoid import cycles)."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


class FusionModule(nn.Module, abc.ABC):
    """Fuses projected image/text embeddings v, t (B, D) into one (B, D) vector.

    Subclasses without modality weights derive from :class:`UnweightedFusion` and implement
    ``fuse``. Subclasses that expose how much each modality drove the output set
    ``has_modality_weights`` and implement :meth:`forward_with_weights` returning (B, 2)
    weights [image, text] whose rows sum to 1.
    """

    has_modality_weights: ClassVar[bool] = False
    uses_heads: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_options(
        cls, dim: int, heads: int, layers: int, params: dict[str, Any]
    ) -> FusionModule:
        """Construct as the research factory does from fusion_dim, heads, layers, params."""

    @abc.abstractmethod
    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, D) fused vector and, where the fusion has them, (B, 2) image/text weights."""

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        return self.forward_with_weights(v, t)[0]


class UnweightedFusion(FusionModule):
    """A fusion with no notion of per-modality weights: implement :meth:`fuse` only."""

    @abc.abstractmethod
    def fuse(self, v: Tensor, t: Tensor) -> Tensor:
        """(B, D) fused vector from the projected image and text embeddings."""

    def forward_with_weights(self, v: Tensor, t: Tensor) -> tuple[Tensor, None]:
        return self.fuse(v, t), None


def stack_tokens(v: Tensor, t: Tensor) -> Tensor:
    """X = stack([v, t]) ∈ R^{B×2×D}: the two modality tokens, image first."""
    return torch.stack([v, t], dim=1)


def concat(v: Tensor, t: Tensor) -> Tensor:
    """[v; t] ∈ R^{B×2D}."""
    return torch.cat([v, t], dim=-1)


def mean_self_attention(attn: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """mean over the 2 tokens of MHA(X, X, X) → (B, D) (shared by the routed fusions)."""
    out, _ = attn(x, x, x, need_weights=False)
    return out.mean(dim=1)


def select_by_route(route: Tensor, image_only: Tensor, text_only: Tensor, full: Tensor) -> Tensor:
    """Per-sample branch choice without Python control flow (ONNX-exportable, dynamic batch).

    route (B,) int in {0: image only, 1: text only, 2: full}; the branches are (B, ...) tensors
    (or broadcastable to `full`). Every branch is computed for every sample and one is picked;
    the research code computed each branch only on its samples, which is the same per-sample math.
    """
    r = route.reshape(-1, *([1] * (full.dim() - 1)))
    return torch.where(r == 0, image_only, torch.where(r == 1, text_only, full))


def gate_weights(g: Tensor) -> Tensor:
    """(B, 2) [image, text] share of a gate g ⊙ v + (1 − g) ⊙ t: the gate averaged over D."""
    g_mean = g.mean(dim=-1)
    return torch.stack([g_mean, 1.0 - g_mean], dim=-1)


def routed_weights(route: Tensor, full_weights: Tensor) -> Tensor:
    """Modality weights of a routed fusion: one-hot for the single-modality routes."""
    image_only = full_weights.new_tensor([1.0, 0.0]).expand_as(full_weights)
    text_only = full_weights.new_tensor([0.0, 1.0]).expand_as(full_weights)
    return select_by_route(route, image_only, text_only, full_weights)
