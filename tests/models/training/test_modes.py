"""Parts training keeps in eval mode stay so across an evaluation pass."""

from __future__ import annotations

from torch import nn

from models.training.modes import eval_mode


def test_eval_mode_restores_each_submodules_own_mode() -> None:
    frozen_norm = nn.BatchNorm2d(4)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), frozen_norm, nn.Dropout())
    model.train()
    frozen_norm.eval()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and model[2].training
    assert not frozen_norm.training  # `model.train(True)` would have switched it back on
