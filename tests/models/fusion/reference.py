"""NumPy re-implementations of the research fusion math (docs/spec.md §4), written independently of
the torch modules, for hand-computed test cases."""

from __future__ import annotations

import math

import numpy as np
from torch import nn

Array = np.ndarray


def np_param(module: nn.Module, name: str) -> Array:
    return dict(module.named_parameters())[name].detach().double().numpy()


def linear(module: nn.Module, prefix: str, x: Array) -> Array:
    return x @ np_param(module, f"{prefix}.weight").T + np_param(module, f"{prefix}.bias")


def gelu(x: Array) -> Array:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: Array, axis: int = -1) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(module: nn.Module, prefix: str, x: Array, eps: float = 1e-5) -> Array:
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * np_param(module, f"{prefix}.weight") + np_param(
        module, f"{prefix}.bias"
    )


def mha(module: nn.Module, prefix: str, q: Array, k: Array, heads: int) -> tuple[Array, Array]:
    """Multi-head attention (B, Lq, D) × (B, Lk, D) → output, head-averaged weights (B, Lq, Lk)."""
    w = np_param(module, f"{prefix}.in_proj_weight")
    b = np_param(module, f"{prefix}.in_proj_bias")
    d = q.shape[-1]
    dh = d // heads
    qp = q @ w[:d].T + b[:d]
    kp = k @ w[d : 2 * d].T + b[d : 2 * d]
    vp = k @ w[2 * d :].T + b[2 * d :]
    outs, weights = [], []
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        a = softmax(qp[..., sl] @ kp[..., sl].transpose(0, 2, 1) / math.sqrt(dh))
        outs.append(a @ vp[..., sl])
        weights.append(a)
    out = np.concatenate(outs, axis=-1)
    return linear(module, f"{prefix}.out_proj", out), np.mean(weights, axis=0)


def stack(v: Array, t: Array) -> Array:
    return np.stack([v, t], axis=1)
