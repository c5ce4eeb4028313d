"""Evaluation mode for a while, then every submodule's own mode back.

`module.train(flag)` sets the whole tree, so restoring a backbone that way also switches parts
that training keeps in eval mode on purpose (frozen BatchNorm statistics, a frozen prefix) to
train mode: their running statistics then drift, and eval answers diverge from training's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for sub, training in modes:
            sub.training = training
