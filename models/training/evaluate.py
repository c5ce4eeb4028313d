"""Run a model over a split in eval mode and score it (metrics.split_metrics)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.training.losses import LOGIT_KEYS
from models.training.metrics import split_metrics
from models.training.modes import eval_mode
from models.training.tensors import SplitTensors


@torch.no_grad()
def predict(model: nn.Module, split: SplitTensors, batch_size: int) -> list[np.ndarray]:
    """Softmax probabilities per task, rows in split order."""
    probs: list[list[np.ndarray]] = [[], []]
    with eval_mode(model):
        for batch in split.batches(batch_size):
            out = model(batch.pixel_values, batch.input_ids, batch.attention_mask)
            for i, key in enumerate(LOGIT_KEYS):
                probs[i].append(torch.softmax(out[key].float(), dim=-1).numpy())
    return [np.concatenate(p) for p in probs]


def evaluate(
    model: nn.Module, split: SplitTensors, task_names: Sequence[str], batch_size: int
) -> dict[str, object]:
    probs = predict(model, split, batch_size)
    truth = [split.labels[:, 0].numpy(), split.labels[:, 1].numpy()]
    return split_metrics(task_names, truth, probs)
