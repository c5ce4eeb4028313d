"""Train one recipe under several seeds and ship the members' average (models.ensemble).

With `ensemble: {seeds: [s1, s2, …], image_vote: …}` in a config, `fusionserve train` trains
one member per seed into `<output_dir>/seed-<s>/` (each a normal run: best.pt, metrics.json,
tokenizer.json), then writes the ensemble to `<output_dir>/best.pt` with its own
`metrics.json` (fused, image-only and text-only dev metrics, and every member's). Members must
share one tokenizer: a WordPiece trained per run is not reproducible across runs (ties in the
trainer), so members after the first reuse the first one's file. Members trained apart are
joined by

    python -m models.training.ensemble --out DIR [--config RECIPE.yaml] MEMBER.pt MEMBER.pt [...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from models.checkpoint import load_checkpoint, save_checkpoint
from models.checkpoint_metadata import CheckpointMetadata
from models.ensemble import SeedEnsemble
from models.training.config import ConfigError, TrainConfig, load_config
from models.training.epoch_report import dev_views, write_metrics
from models.training.prepare import PreparedData, prepare_data
from models.training.run import CHECKPOINT_NAME, METRICS_NAME, TOKENIZER_NAME, train_model
from models.training.seed_summary import mean_std

# What every member must agree on for one graph to serve them all.
_SHARED = ("task_set", "role", "max_text_length", "tokenizer_json", "labels", "image_size")


def train_ensemble(
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train every seed of `cfg.ensemble.seeds`, then join them; returns the metrics.json."""
    seeds = list(cfg.ensemble.seeds) if cfg.ensemble else []
    out = Path(out_dir if out_dir is not None else cfg.output_dir)
    member_cfg = cfg.model_copy(update={"ensemble": None})
    members: list[Path] = []
    for seed in seeds:
        run_dir = out / f"seed-{seed}"
        train_model(
            member_cfg.model_copy(update={"seed": seed, "name": f"{cfg.name}-seed-{seed}"}),
            run_dir,
            epochs,
            limit,
            progress,
        )
        members.append(run_dir / CHECKPOINT_NAME)
        if not (member_cfg.tokenizer.path or member_cfg.tokenizer.from_teacher):
            shared = member_cfg.tokenizer.model_copy(update={"path": str(run_dir / TOKENIZER_NAME)})
            member_cfg = member_cfg.model_copy(update={"tokenizer": shared})
    return join_members(members, out, limit, cfg)


def join_members(
    members: Sequence[Path],
    out: Path,
    limit: int | None = None,
    recipe: TrainConfig | None = None,
    image_vote: bool = False,
) -> dict[str, Any]:
    """Write `out/best.pt` (the ensemble), its tokenizer and metrics.json from member
    checkpoints; ValueError when they cannot share one graph. `recipe` (a config whose
    `ensemble.seeds` lists the members' seeds in order) becomes the ensemble's training config
    and decides the image vote; without it, the first member's config with an `ensemble`
    section from the members' seeds and `image_vote`."""
    loaded = [load_checkpoint(path) for path in members]
    if len(loaded) < 2:
        raise ValueError(f"an ensemble needs at least 2 member checkpoints, got {len(loaded)}")
    _first, cfg, meta = loaded[0]
    for path, (_model, member_cfg, member_meta) in zip(members, loaded, strict=True):
        for key in _SHARED:
            if getattr(member_meta, key) != getattr(meta, key):
                raise ValueError(f"{path}: its {key} differs from {members[0]}'s")
        if member_cfg.to_dict() != cfg.to_dict():
            raise ValueError(f"{path}: another model config than {members[0]}")
    seeds = [int((m.training_config or {}).get("seed", -1)) for _, _, m in loaded]
    train_cfg = recipe_for(recipe, meta, seeds, image_vote)
    data = prepare_data(
        train_cfg, limit, Tokenizer.from_str(meta.require_tokenizer()), meta.max_text_length
    )
    vote = bool(train_cfg.ensemble and train_cfg.ensemble.image_vote)
    ensemble = SeedEnsemble(cfg, len(loaded), vote)
    for slot, (model, _cfg, _meta) in zip(ensemble.members, loaded, strict=True):
        slot.load_state_dict(model.state_dict())
    ensemble.eval()
    if vote:
        ensemble.set_empty_text(empty_text_ids(data))
    views = (data.dev, data.spec.task_names, train_cfg.data.batch_size)
    report = dev_views(ensemble, *views)
    member_reports: list[dict[str, Any]] = [
        {"checkpoint": str(path), "seed": seed, "dev": dev_views(model, *views)}
        for path, seed, (model, _, _) in zip(members, seeds, loaded, strict=True)
    ]
    metadata = replace(
        meta,
        training_config=train_cfg.to_dict(),
        metrics={"dev": report["dev"]},
        other={"ensemble_members": [r["checkpoint"] for r in member_reports]},
    )
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / CHECKPOINT_NAME, ensemble, cfg, metadata)
    (out / TOKENIZER_NAME).write_text(meta.require_tokenizer(), encoding="utf-8")
    payload = {
        "name": train_cfg.name,
        "role": meta.role,
        "ensemble": train_cfg.to_dict()["ensemble"],
        "checkpoint": str(out / CHECKPOINT_NAME),
        **report,
        "members": member_reports,  # each network alone, without the image vote
        "member_mean_std": member_spread([r["dev"] for r in member_reports]),
    }
    write_metrics(out / METRICS_NAME, payload)
    return payload


def recipe_for(
    recipe: TrainConfig | None, meta: CheckpointMetadata, seeds: list[int], image_vote: bool
) -> TrainConfig:
    """The ensemble's training config: `recipe` when it names these seeds, else the first
    member's config with an `ensemble` section."""
    if recipe is None:
        section = {"seeds": seeds, "image_vote": image_vote}
        return TrainConfig.from_dict({**(meta.training_config or {}), "ensemble": section})
    listed = recipe.ensemble.seeds if recipe.ensemble else None
    if listed != seeds:
        raise ValueError(f"the config's ensemble.seeds {listed} are not the members' {seeds}")
    return recipe


def empty_text_ids(data: PreparedData) -> list[int]:
    """The service's empty-text fallback as this tokenizer encodes it, without padding."""
    assert data.dev.empty_text is not None
    ids, mask = data.dev.empty_text
    return [int(i) for i in ids[0][mask[0] == 1]]


def member_spread(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """{view: {task: "mean ± std" of macro-F1}} over the members."""
    spread: dict[str, dict[str, str]] = {}
    for view in reports[0]:
        for task, scores in reports[0][view].items():
            if not isinstance(scores, dict):
                continue
            values = [float(r[view][task]["macro_f1"]) for r in reports]
            spread.setdefault(view, {})[task] = mean_std(values)
    return spread


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.ensemble", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for best.pt + metrics")
    parser.add_argument(
        "--config", type=Path, help="the recipe (with `ensemble`) recorded as training config"
    )
    parser.add_argument(
        "--image-vote", action="store_true", help="without --config: turn the image vote on"
    )
    parser.add_argument("members", nargs="+", type=Path, help="member checkpoints (best.pt)")
    args = parser.parse_args(argv)
    try:
        recipe = load_config(args.config) if args.config else None
        payload = join_members(args.members, args.out, recipe=recipe, image_vote=args.image_vote)
    except (ValueError, ConfigError) as exc:
        print(f"ensemble: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {payload['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
