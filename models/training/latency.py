"""CPU inference latency per sample of trained checkpoints (eval mode, fp32, torch).

`python -m models.training.latency CKPT [CKPT ...] [--threads N] [--batches 1 32]`
prints ms/sample at each batch size and the parameter count; inputs are random tensors of
the served shapes (the training image size, text at the checkpoint's max length).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint
from models.multitask import count_parameters


@torch.no_grad()
def latency_ms_per_sample(
    model: torch.nn.Module, max_length: int, batch: int, repeats: int = 5, image_size: int = 224
) -> float:
    """Median over `repeats` timed forwards (after one warm-up) divided by the batch size."""
    model.eval()
    pixels = torch.randn(batch, 3, image_size, image_size)
    ids = torch.randint(5, 100, (batch, max_length))
    mask = torch.ones_like(ids)
    model(pixels, ids, mask)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(pixels, ids, mask)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000.0 / batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for path in args.checkpoints:
        model, _cfg, meta = load_checkpoint(path)
        length, size = meta.max_text_length, meta.image_size
        row = {
            "checkpoint": str(path),
            "parameters": count_parameters(model),
            "threads": args.threads,
            "ms_per_sample": {
                str(b): round(latency_ms_per_sample(model, length, b, args.repeats, size), 3)
                for b in args.batches
            },
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
