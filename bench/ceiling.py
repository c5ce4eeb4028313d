"""The ceiling: the service's own decode + tokenize + onnxruntime pipeline, in-process, no HTTP.

It uses the app's modules unchanged (`app.preprocess.prepare`, `app.runtime.load_onnx_model`,
the same Settings), so the only thing the served numbers can lose against it is what serving
adds: HTTP, multipart parsing, queues, thread hops, JSON. Two figures come out:

- throughput: items flow through a pool of `preprocess_workers` threads (as in the service)
  into batches of `max_batch_size` run on this thread, decode overlapping inference;
- single-item latency: one item at a time, decode + tokenize + a batch-of-1 run, back to back.

Inference-only and preprocess-only rates are kept too: they explain the student/teacher and
int8/fp32 ratios (a fast graph cannot make decoding faster).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.contract.image import ImageLimits
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.runtime import OnnxModel, load_onnx_model
from app.settings import Settings
from bench.samples import Sample

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


def input_spec(bundle_dir: Path, settings: Settings) -> InputSpec:
    """The bundle's preprocessing spec, built as the registry does."""
    manifest = Manifest.load(bundle_dir)
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(
        bundle_dir / TOKENIZER_FILE, pre.max_text_length, pre.empty_text
    )
    limits = ImageLimits(max_pixels=settings.max_image_pixels, min_side=settings.min_image_side)
    return InputSpec.from_manifest(manifest, encoder, limits)


def load_pipeline(bundle_dir: Path, settings: Settings) -> tuple[InputSpec, OnnxModel]:
    """The bundle's preprocessing spec and onnxruntime session, built as the registry does."""
    model = load_onnx_model(bundle_dir, Manifest.load(bundle_dir), settings)
    return input_spec(bundle_dir, settings), model


def _prepare(sample: Sample, spec: InputSpec) -> PreparedInputs:
    return prepare(sample.image, sample.text, spec)


def pipelined_wall_s(
    spec: InputSpec,
    model: OnnxModel,
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
                pending.append(pool.submit(_prepare, sample, spec))
                submitted += 1
            batch.append(pending.popleft().result())
            if len(batch) == batch_size or (not pending and submitted == items):
                model.run_batch(batch)
                batch = []
        return time.perf_counter() - start


def single_item_latencies_ms(
    spec: InputSpec, model: OnnxModel, samples: Sequence[Sample], items: int
) -> list[float]:
    latencies = []
    for index in range(items):
        sample = samples[index % len(samples)]
        start = time.perf_counter()
        model.run_batch([_prepare(sample, spec)])
        latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


def _preprocess_ms(spec: InputSpec, samples: Sequence[Sample], items: int) -> float:
    start = time.perf_counter()
    for index in range(items):
        _prepare(samples[index % len(samples)], spec)
    return (time.perf_counter() - start) * 1000.0 / items


def _inference_items_per_s(
    model: OnnxModel, samples: Sequence[Sample], spec: InputSpec, batch_size: int, items: int
) -> float:
    batch = [_prepare(samples[i % len(samples)], spec) for i in range(batch_size)]
    runs = max(1, items // batch_size)
    start = time.perf_counter()
    for _ in range(runs):
        model.run_batch(batch)
    return runs * batch_size / (time.perf_counter() - start)


def measure_ceiling(
    bundle_dir: Path,
    settings: Settings,
    samples: Sequence[Sample],
    items: int,
    single_items: int,
) -> CeilingResult:
    """Throughput over `items` items and latency over `single_items` single-item passes."""
    spec, model = load_pipeline(bundle_dir, settings)
    batch_size, workers = settings.max_batch_size, settings.preprocess_workers
    single_item_latencies_ms(spec, model, samples, WARMUP_ITEMS)
    pipelined_wall_s(spec, model, samples, min(items, 2 * batch_size), batch_size, workers)
    cpu_start = time.process_time()
    wall_s = pipelined_wall_s(spec, model, samples, items, batch_size, workers)
    cpu_s = time.process_time() - cpu_start
    latencies = single_item_latencies_ms(spec, model, samples, single_items)
    return CeilingResult(
        items=items,
        batch_size=batch_size,
        workers=workers,
        wall_s=wall_s,
        cpu_s=cpu_s,
        single_latencies_ms=tuple(latencies),
        preprocess_ms=_preprocess_ms(spec, samples, single_items),
        inference_items_per_s=_inference_items_per_s(model, samples, spec, batch_size, items),
        precision=model.precision,
    )
