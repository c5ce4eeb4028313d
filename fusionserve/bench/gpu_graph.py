"""The graph alone on one execution provider: items/s across batch sizes, with and without
I/O binding, and its outputs against the CPU's (a GPU that is fast but wrong must not pass)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.bundle_loader import input_spec, load_bundle, read_manifest
from app.loaded_bundle import LoadedBundle
from app.preprocess import PreparedInputs, prepare
from app.settings import Settings
from fusionserve.bench.samples import Sample

WARMUP_RUNS = 3


@dataclass(frozen=True)
class GraphRow:
    bundle: str
    provider: str  # the provider the session actually runs on
    io_binding: bool
    batch: int
    runs: int
    items_per_s: float
    median_ms: float  # one run of the whole batch


def prepared(
    bundle_dir: Path, settings: Settings, samples: Sequence[Sample], count: int
) -> list[PreparedInputs]:
    """`count` items through the service's own preprocessing, cycling the samples (no session
    is opened: the sweeps open their own)."""
    spec = input_spec(bundle_dir, read_manifest(bundle_dir), settings)
    cycled = (samples[i % len(samples)] for i in range(count))
    return [prepare(s.image, s.text, spec) for s in cycled]


def time_batch(
    bundle: LoadedBundle, batch: Sequence[PreparedInputs], min_seconds: float, min_runs: int = 5
) -> tuple[int, float, float]:
    """(runs, items/s, median ms per run) of `batch`, run back to back for ≥ min_seconds."""
    for _ in range(WARMUP_RUNS):
        bundle.run_batch(batch)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        bundle.run_batch(batch)
        times.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - start
    return len(times), len(times) * len(batch) / elapsed, 1000.0 * statistics.median(times)


def sweep(
    bundle_dir: Path,
    settings: Settings,
    items: Sequence[PreparedInputs],
    batches: Sequence[int],
    min_seconds: float,
) -> list[GraphRow]:
    """One session with `settings`; every batch size in `batches` (items cycled to fill it)."""
    bundle = load_bundle(bundle_dir, settings)
    rows = []
    for size in batches:
        batch = [items[i % len(items)] for i in range(size)]
        runs, rate, median_ms = time_batch(bundle, batch, min_seconds)
        rows.append(
            GraphRow(
                bundle_dir.name,
                bundle.onnx.provider,
                bundle.onnx.io_binding,
                size,
                runs,
                rate,
                median_ms,
            )
        )
    return rows


def max_abs_difference(
    bundle_dir: Path, settings: Settings, reference: Settings, items: Sequence[PreparedInputs]
) -> float:
    """Largest |output difference| over every output of one batch, `settings` vs `reference`."""
    model = load_bundle(bundle_dir, settings)
    ref = load_bundle(bundle_dir, reference)
    worst = 0.0
    for got, want in zip(model.run_batch(items), ref.run_batch(items), strict=True):
        for name, value in want.items():
            worst = max(worst, float(np.max(np.abs(got[name] - value))))
    return worst
