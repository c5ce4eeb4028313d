"""The ceiling: the service's own decode + tokenize + onnxruntime pipeline, in-process, no HTTP.

It loads the bundle with the service's own loader (`app.bundle_loader.load_bundle`: the same
checks, preprocessing, session options and warm-up, from the same Settings), so the only thing
the served numbers can lose against it is what serving adds: HTTP, multipart parsing, queues,
thread hops, JSON. Two figures come out:

- throughput: items flow through a pool of `preprocess_workers` threads (as in the service)
  into batches of `max_batch_size` run on this thread, decode overlapping inference;
- single-item latency: one item at a time, decode + tokenize + a batch-of-1 run, back to back.

Inference-only and preprocess-only rates are kept too: they explain the student/teacher and
int8/fp32 ratios (a fast graph cannot make decoding faster).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.bundle_loader import load_bundle
from app.contract.session import max_batch_size
from app.loaded_bundle import LoadedBundle
from app.preprocess import PreparedInputs
from app.settings import Settings
from fusionserve.bench.samples import Sample

WARMUP_ITEMS = 8


@dataclass(frozen=True)
class CeilingResult:
    items: int
    batch_size: int
    workers: int
    wall_s: float
    cpu_s: float  # process CPU time of the pipelined run (all threads)
    single_latencies_ms: tuple[float, ...]
    preprocess_ms: float  # mean decode + tokenize of one item, one thread
    inference_items_per_s: float  # the graph alone at batch_size, prepared inputs
    precision: str

    @property
    def throughput(self) -> float:
        return self.items / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_item(self) -> float:
        """CPU cost of one item through the pipeline: robust to other load on the machine."""
        return 1000.0 * self.cpu_s / self.items

    @property
    def single_p50(self) -> float:
        return float(np.percentile(np.asarray(self.single_latencies_ms), 50))


def _prepare(sample: Sample, bundle: LoadedBundle) -> PreparedInputs:
    return bundle.prepare(sample.image, sample.text)


def pipelined_wall_s(
    bundle: LoadedBundle,
    samples: Sequence[Sample],
    items: int,
    batch_size: int,
    workers: int,
) -> float:
    """Seconds to push `items` samples through pooled preprocessing into batched inference."""
    window = 2 * batch_size  # bounded look-ahead: decode runs ahead, memory stays flat
    with ThreadPoolExecutor(workers, thread_name_prefix="ceiling-preprocess") as pool:
        start = time.perf_counter()
        pending: deque[Future[PreparedInputs]] = deque()
        submitted = 0
        batch: list[PreparedInputs] = []
        while submitted < items or pending:
            while submitted < items and len(pending) < window:
                sample = samples[submitted % len(samples)]
                pending.append(pool.submit(_prepare, sample, bundle))
                submitted += 1
            batch.append(pending.popleft().result())
            if len(batch) == batch_size or (not pending and submitted == items):
                bundle.run_batch(batch)
                batch = []
        return time.perf_counter() - start


def single_item_latencies_ms(
    bundle: LoadedBundle, samples: Sequence[Sample], items: int
) -> list[float]:
    latencies = []
    for index in range(items):
        sample = samples[index % len(samples)]
        start = time.perf_counter()
        bundle.run_batch([_prepare(sample, bundle)])
        latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


def _preprocess_ms(bundle: LoadedBundle, samples: Sequence[Sample], items: int) -> float:
    start = time.perf_counter()
    for index in range(items):
        _prepare(samples[index % len(samples)], bundle)
    return (time.perf_counter() - start) * 1000.0 / items


def _inference_items_per_s(
    bundle: LoadedBundle, samples: Sequence[Sample], batch_size: int, items: int
) -> float:
    batch = [_prepare(samples[i % len(samples)], bundle) for i in range(batch_size)]
    runs = max(1, items // batch_size)
    start = time.perf_counter()
    for _ in range(runs):
        bundle.run_batch(batch)
    return runs * batch_size / (time.perf_counter() - start)


def _batching(bundle: LoadedBundle, settings: Settings) -> tuple[int, int]:
    """(batch size, preprocessing workers) as the service runs them: the bundle's own
    max_batch_size, as its batcher has it (app.model_settings, resolved)."""
    batch_size = max_batch_size(bundle.settings.max_batch_size, bundle.onnx.device)
    return batch_size, settings.preprocess_workers


def _timed_pass(
    bundle: LoadedBundle, samples: Sequence[Sample], items: int, batch_size: int, workers: int
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one pipelined pass of `items` samples."""
    cpu_start = time.process_time()
    wall_s = pipelined_wall_s(bundle, samples, items, batch_size, workers)
    return wall_s, time.process_time() - cpu_start


def pipeline_pass(
    bundle_dir: Path, settings: Settings, samples: Sequence[Sample], items: int
) -> Callable[[], float]:
    """A loaded, warmed pipeline as `measure_ceiling` runs it → a function that pushes `items`
    samples through it once and returns its process CPU ms per item (the paired rounds' own
    denominator, `fusionserve.bench.paired`)."""
    bundle = load_bundle(bundle_dir, settings)
    batch_size, workers = _batching(bundle, settings)
    pipelined_wall_s(bundle, samples, min(items, 2 * batch_size), batch_size, workers)
    return lambda: _timed_pass(bundle, samples, items, batch_size, workers)[1] * 1000.0 / items


def measure_ceiling(
    bundle_dir: Path,
    settings: Settings,
    samples: Sequence[Sample],
    items: int,
    single_items: int,
) -> CeilingResult:
    """Throughput over `items` items and latency over `single_items` single-item passes."""
    bundle = load_bundle(bundle_dir, settings)
    batch_size, workers = _batching(bundle, settings)
    single_item_latencies_ms(bundle, samples, WARMUP_ITEMS)
    pipelined_wall_s(bundle, samples, min(items, 2 * batch_size), batch_size, workers)
    wall_s, cpu_s = _timed_pass(bundle, samples, items, batch_size, workers)
    latencies = single_item_latencies_ms(bundle, samples, single_items)
    return CeilingResult(
        items=items,
        batch_size=batch_size,
        workers=workers,
        wall_s=wall_s,
        cpu_s=cpu_s,
        single_latencies_ms=tuple(latencies),
        preprocess_ms=_preprocess_ms(bundle, samples, single_items),
        inference_items_per_s=_inference_items_per_s(bundle, samples, batch_size, items),
        precision=bundle.onnx.precision,
    )
