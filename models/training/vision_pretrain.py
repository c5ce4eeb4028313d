"""Optional image-only pretraining of the vision backbone before the fused training.

A fused model leans on the text, which fits first: the MedPix teacher's image branch alone
scores location macro-F1 0.34 on dev. Training the from-scratch backbone on its own first
(temporary linear heads, discarded afterwards; same augmentation and class weighting) hands
the fused stage an image branch that already tells anatomy apart. No outside weights: the
stage sees the same training split as the fused run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.backbones import feature_dim, vision_features
from models.training.config import OptimConfig, VisionPretrainConfig
from models.training.losses import LOGIT_KEYS, ClassWeights, ce_loss
from models.training.metrics import split_metrics
from models.training.schedule import build_schedule
from models.training.tensors import SplitTensors
from models.training.trainer import step


def image_only_probs(
    vision: nn.Module, heads: nn.ModuleList, split: SplitTensors, batch_size: int
) -> list[np.ndarray]:
    """Softmax probabilities per task from the image alone, rows in split order."""
    probs: list[list[np.ndarray]] = [[] for _ in heads]
    with torch.no_grad():
        for batch in split.batches(batch_size):
            features = vision_features(vision, batch.pixel_values)
            for i, head in enumerate(heads):
                probs[i].append(torch.softmax(head(features), dim=-1).numpy())
    return [np.concatenate(p) for p in probs]


def pretrain_vision(
    vision: nn.Module,
    num_classes: tuple[int, int],
    train: SplitTensors,
    dev: SplitTensors,
    task_names: tuple[str, str],
    stage: VisionPretrainConfig,
    augment: OptimConfig,
    batch_size: int,
    seed: int,
    class_weights: ClassWeights,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train `vision` in place on both tasks from pixels only; returns per-epoch dev metrics."""
    heads = nn.ModuleList(nn.Linear(feature_dim(vision), k) for k in num_classes)
    params = [*vision.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    steps = -(-len(train) // batch_size) * stage.epochs
    scheduler = build_schedule(optimizer, "cosine", steps, stage.warmup_ratio)
    generator = torch.Generator().manual_seed(seed + 1)
    truth = [dev.labels[:, 0].numpy(), dev.labels[:, 1].numpy()]
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    for epoch in range(1, stage.epochs + 1):
        vision.train()
        heads.train()
        batches = train.batches(batch_size, generator, augment.hflip, augment.crop_min_scale)
        for batch in tqdm(
            batches, desc=f"vision {epoch}/{stage.epochs}", disable=not progress, leave=False
        ):
            features = vision_features(vision, batch.pixel_values)
            logits = dict(zip(LOGIT_KEYS, (head(features) for head in heads), strict=True))
            loss = ce_loss(logits, batch.labels, class_weights)
            step(loss, optimizer, scheduler, params, augment.grad_clip)
        vision.eval()
        heads.eval()
        metrics = split_metrics(task_names, truth, image_only_probs(vision, heads, dev, batch_size))
        history.append(
            {
                "epoch": epoch,
                "dev_image_only": metrics,
                "elapsed_s": round(time.perf_counter() - start, 1),
            }
        )
        print(
            f"vision epoch {epoch}: "
            + " ".join(f"{t} f1 {metrics[t]['macro_f1']:.3f}" for t in task_names),  # type: ignore[index]
            flush=True,
        )
    return history
