"""`fusionserve train teacher|student --config configs/<x>.yaml` (torch imported in `run` only)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("role", choices=["teacher", "student"], help="what the config trains")
    parser.add_argument("--config", required=True, help="training config YAML")
    parser.add_argument("--out", help="output directory (default: the config's output_dir)")
    parser.add_argument("--epochs", type=int, help="override optim.epochs")
    parser.add_argument("--limit", type=int, help="use at most N samples per split (smoke runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from models.data import DataError
    from models.training.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
        if cfg.role != args.role:
            raise ConfigError(f"{args.config}: 'role' is {cfg.role!r}, not {args.role!r}")
        if args.epochs is not None and args.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
        if args.limit is not None and args.limit < 2:
            raise ConfigError(f"--limit must be >= 2, got {args.limit}")
        if cfg.ensemble is not None:
            from models.training.ensemble import train_ensemble as train
        elif cfg.late_fusion is not None:
            from models.training.late_fusion import train_late_fusion as train
        else:
            from models.training.run import train_model as train

        train(cfg, args.out, args.epochs, args.limit, progress=not args.no_progress)
    except (ConfigError, DataError) as exc:
        print(f"fusionserve train: {exc}", file=sys.stderr)
        return 2
    return 0
