"""Opening a bundle graph in onnxruntime: providers with CPU fallback, threads, optimisation.

Serve, verify, export and bench all open sessions here, so a graph is judged under the options
it is served with. The caller decides where onnxruntime's own log lines go.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnxruntime as ort

logger = logging.getLogger("fusionserve.runtime")

CPU = "CPUExecutionProvider"
GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})
GraphOptimization = Literal["disable", "basic", "extended", "all"]
GRAPH_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class RuntimeOptions:
    """How a session runs; the defaults are the service's (CPU, auto threads, all opts)."""

    providers: tuple[str, ...] = (CPU,)
    intra_op_threads: int = 0  # 0 = auto: half the cores, at least 1 (see `intra_op_threads`)
    inter_op_threads: int = 0
    graph_optimization: GraphOptimization = "all"


def resolve_providers(
    requested: Sequence[str], available: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """Requested providers that exist here, in order, CPU always last; and the missing ones."""
    available = list(ort.get_available_providers() if available is None else available)
    usable = [p for p in requested if p in available and p != CPU]
    missing = [p for p in requested if p not in available]
    return [*usable, CPU], missing


def intra_op_threads(configured: int, cpu_count: int | None = None) -> int:
    """Threads inside one operator; 0 = auto: half the cores, at least 1.

    Decode/tokenize threads and the event loop need CPU too: on a 2-core host onnxruntime's own
    default (a spinning thread per core) cost ~50% more CPU per request for no speed-up.
    """
    if configured > 0:
        return configured
    return max(1, (cpu_count if cpu_count is not None else os.cpu_count() or 1) // 2)


CPU_BATCH = 4  # auto max_batch_size on a CPU
GPU_BATCH = 32  # auto max_batch_size on a GPU


def max_batch_size(configured: int, device: str) -> int:
    """Most items in one graph run; 0 = auto: 4 on a CPU, 32 on a GPU.

    A GPU runs a batch of 32 in about the time of one item, so it wants big batches. A CPU's
    time per item barely falls with the batch, while every item of a batch waits for its last:
    smaller batches kept the throughput and made the tails fairer (bench/RESULTS.md, issue 26).
    """
    if configured > 0:
        return configured
    return CPU_BATCH if device == "cpu" else GPU_BATCH


def concurrent_runs(
    configured: int, device: str, intra_configured: int, cpu_count: int | None = None
) -> int:
    """Graph runs one model may have in progress at once; 0 = auto: 2 on a CPU where auto
    `intra_op_threads` gives each run one thread (2 or 3 cores), else 1.

    There, one run holds one core; the other is for preprocessing, which comes in bursts as
    answers go out, so between bursts it idled while the next batch waited for the run: a
    second run on the same session (each run on its own calling thread) fills it (measured on
    2 cores: bench/RESULTS.md, issue 26). With more threads per run, concurrent runs share the
    session's one intra-op pool instead of adding cores, and where the threads are set (the
    Kubernetes manifests give one run the pod's CPU request) one run already fills what was
    sized for it; a GPU serialises runs on its stream anyway. Set it to measure other layouts.
    """
    if configured > 0:
        return configured
    cores = cpu_count if cpu_count is not None else os.cpu_count() or 1
    one_thread_runs = intra_configured == 0 and intra_op_threads(0, cores) == 1
    return 2 if device == "cpu" and one_thread_runs and cores >= 2 else 1


def session_options(options: RuntimeOptions) -> ort.SessionOptions:
    result = ort.SessionOptions()
    result.intra_op_num_threads = intra_op_threads(options.intra_op_threads)
    result.inter_op_num_threads = options.inter_op_threads
    # Idle pool threads sleep instead of spinning: the CPU goes to preprocessing and HTTP.
    result.add_session_config_entry("session.intra_op.allow_spinning", "0")
    result.add_session_config_entry("session.inter_op.allow_spinning", "0")
    result.graph_optimization_level = GRAPH_LEVELS[options.graph_optimization]
    result.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return result


def open_session(path: str | Path, options: RuntimeOptions | None = None) -> ort.InferenceSession:
    """A session for the graph at `path`; unavailable providers are skipped with a warning."""
    options = options or RuntimeOptions()
    providers, missing = resolve_providers(options.providers)
    if missing:
        logger.warning(
            "requested execution providers not available here: %s; using %s", missing, providers
        )
    return ort.InferenceSession(
        str(path), sess_options=session_options(options), providers=providers
    )
