"""Late-fuse a trained network with a bag-of-words text model (models.late_fusion).

`fusionserve train` does it after training the network when the config has a `late_fusion`
section; a network trained before is late-fused by

    python -m models.training.late_fusion --config RECIPE.yaml --out DIR NETWORK.pt

The text model is fitted on train (its strength chosen by grouped k-fold CV over train + dev,
models.training.bow_fit). Each task's (fused, image, text) weights are then chosen from the
config's few variants on dev, where the network and the text model are both unseen: the variant
with the best dev macro-F1 is kept, and the same choice made on k-1 folds of dev and scored on
the fold left out gives the cross-validated estimate reported beside it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from tokenizers import Tokenizer

from models.checkpoint import load_checkpoint, save_checkpoint
from models.late_fusion import SOURCES, LateFusionModel
from models.training.bow_fit import fit_text_model
from models.training.config import ConfigError, LateFusionConfig, TrainConfig, load_config
from models.training.ensemble import empty_text_ids
from models.training.epoch_report import dev_views, write_metrics
from models.training.evaluate import predict
from models.training.prepare import prepare_data
from models.training.run import CHECKPOINT_NAME, METRICS_NAME, TOKENIZER_NAME, train_model

NETWORK_DIR = "network"


def train_late_fusion(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the network into `<out>/network/`, then late-fuse it into `<out>/best.pt`."""
    out = Path(out_dir if out_dir is not None else cfg.output_dir)
    network_cfg = cfg.model_copy(update={"late_fusion": None})
    train_model(network_cfg, out / NETWORK_DIR, epochs, limit, progress)
    return late_fuse(out / NETWORK_DIR / CHECKPOINT_NAME, out, cfg, limit)


def late_fuse(
    network_path: Path, out: Path, recipe: TrainConfig, limit: int | None = None
) -> dict[str, Any]:
    """Write `out/best.pt`, its tokenizer and metrics.json; returns the metrics."""
    settings = recipe.late_fusion or LateFusionConfig()
    network, cfg, meta = load_checkpoint(network_path)
    tokenizer = Tokenizer.from_str(meta.require_tokenizer())
    data = prepare_data(recipe, limit, tokenizer, meta.max_text_length)
    model = LateFusionModel(cfg, tokenizer.get_vocab_size())
    model.network.load_state_dict(network.state_dict())
    model.eval()
    model.set_empty_text(empty_text_ids(data))
    text_report = fit_text_model(
        model.bow, data.train, data.dev, settings.text_c, settings.folds, recipe.seed
    )
    sources = dev_sources(model, data.dev, recipe.data.batch_size)
    truth = [data.dev.labels[:, t].numpy() for t in range(len(sources))]
    chosen, weight_report = [], {}
    for task, name in enumerate(data.spec.task_names):
        pick, scores = choose_weights(sources[task], truth[task], settings, recipe.seed)
        chosen.append(pick)
        weight_report[name] = scores
    model.set_task_weights(chosen)
    names, batch_size = data.spec.task_names, recipe.data.batch_size
    views = dev_views(model, data.dev, names, batch_size)
    fusion_report = {
        "sources": list(SOURCES),
        "weights": {name: list(chosen[t]) for t, name in enumerate(names)},
        "weight_choice": weight_report,
        "text_model": {names[int(t)]: r for t, r in text_report.items()},
    }
    metadata = replace(
        meta,
        training_config=with_network(recipe, network_path),
        metrics={"dev": views["dev"]},
        other={"late_fusion_fit": fusion_report},
    )
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / CHECKPOINT_NAME, model, cfg, metadata)
    (out / TOKENIZER_NAME).write_text(meta.require_tokenizer(), encoding="utf-8")
    payload = {
        "name": recipe.name,
        "role": meta.role,
        "checkpoint": str(out / CHECKPOINT_NAME),
        "late_fusion": fusion_report,
        **views,
        "network": {
            "checkpoint": str(network_path),
            **dev_views(network, data.dev, names, batch_size),
        },
    }
    write_metrics(out / METRICS_NAME, payload)
    return payload


def with_network(recipe: TrainConfig, network_path: Path) -> dict[str, Any]:
    """The recipe as training config, its provenance naming the network that was fused."""
    raw = recipe.to_dict()
    raw["provenance"] = {**raw.get("provenance", {}), "network_checkpoint": str(network_path)}
    return raw


def dev_sources(model: LateFusionModel, dev: Any, batch_size: int) -> list[np.ndarray]:
    """Per task, (3, N, C) dev log-probabilities in SOURCES order."""
    fused = predict(model.network, dev, batch_size)
    image = predict(model.network, dev.image_only(), batch_size)
    with torch.no_grad():
        bag, _present = model.bow(dev.input_ids, dev.attention_mask)
    return [
        np.stack(
            [
                np.log(np.clip(fused[t], 1e-12, 1)),
                np.log(np.clip(image[t], 1e-12, 1)),
                bag[t].numpy(),
            ]
        )
        for t in range(len(fused))
    ]


def _score(sources: np.ndarray, truth: np.ndarray, weights: Sequence[float]) -> float:
    combined = np.tensordot(np.asarray(weights, dtype=np.float64), sources, axes=1)
    return float(f1_score(truth, combined.argmax(-1), average="macro"))


def choose_weights(
    sources: np.ndarray, truth: np.ndarray, settings: LateFusionConfig, seed: int
) -> tuple[tuple[float, float, float], dict[str, Any]]:
    """The variant with the best dev macro-F1 (ties: the earlier one), and the k-fold estimate
    of choosing that way."""
    variants = [tuple(float(w) for w in v) for v in settings.variants]
    dev_scores = [_score(sources, truth, v) for v in variants]
    folds = StratifiedKFold(n_splits=settings.folds, shuffle=True, random_state=seed)
    held_out = []
    for fit_rows, test_rows in folds.split(truth, truth):
        fit_scores = [_score(sources[:, fit_rows], truth[fit_rows], v) for v in variants]
        pick = variants[int(np.argmax(fit_scores))]
        held_out.append(_score(sources[:, test_rows], truth[test_rows], pick))
    best = variants[int(np.argmax(dev_scores))]
    report = {
        "dev_macro_f1": {
            ",".join(f"{w:g}" for w in v): s for v, s in zip(variants, dev_scores, strict=True)
        },
        "cv_macro_f1_of_choice": float(np.mean(held_out)),
    }
    return best, report  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.late_fusion", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, type=Path, help="the recipe (late_fusion)")
    parser.add_argument("--out", required=True, type=Path, help="folder for best.pt + metrics")
    parser.add_argument("network", type=Path, help="the trained network's checkpoint (best.pt)")
    args = parser.parse_args(argv)
    try:
        recipe = load_config(args.config)
        torch.set_num_threads(recipe.threads or torch.get_num_threads())
        payload = late_fuse(args.network, args.out, recipe)
    except (ValueError, ConfigError) as exc:
        print(f"late_fusion: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {payload['checkpoint']}: weights {payload['late_fusion']['weights']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
