"""onnxruntime sessions: execution providers with CPU fallback, threads, graph optimisation,
precision (fp32 / int8), and the one function that runs a batch.

The batch function is called from the model's own inference thread (app.batcher), never from
the event loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.contract.graph import INPUT_NAMES
from app.contract.manifest import INT8_MODEL_FILE, MODEL_FILE, Manifest
from app.contract.text import trim_padding
from app.ort_logs import ort_logs_to_logger
from app.preprocess import PreparedInputs
from app.settings import Settings

logger = logging.getLogger("fusionserve.runtime")

CPU = "CPUExecutionProvider"
GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})
GRAPH_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


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


def session_options(settings: Settings) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads(settings.intra_op_threads)
    options.inter_op_num_threads = settings.inter_op_threads
    # Idle pool threads sleep instead of spinning: the CPU goes to preprocessing and HTTP.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = GRAPH_LEVELS[settings.graph_optimization]
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def choose_model_file(bundle_dir: Path, manifest: Manifest, precision: str) -> tuple[Path, str]:
    """The graph file for the requested precision, and the precision actually used.

    int8 falls back to fp32 (with a warning) when the bundle ships no `model.int8.onnx`.
    """
    if precision == "int8":
        if INT8_MODEL_FILE in manifest.files and (bundle_dir / INT8_MODEL_FILE).is_file():
            return bundle_dir / INT8_MODEL_FILE, "int8"
        logger.warning("bundle %s has no %s; serving fp32", manifest.name, INT8_MODEL_FILE)
    return bundle_dir / MODEL_FILE, "fp32"


@dataclass
class OnnxModel:
    """A loaded graph plus what /models reports about it."""

    session: ort.InferenceSession
    output_names: list[str]
    precision: str
    model_file: str
    dynamic_text: bool = False  # sequence axis symbolic: batches are cut to their longest text
    io_binding: bool = False  # feed and fetch through an IOBinding (see `uses_io_binding`)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def provider(self) -> str:
        """The execution provider actually in use (the first one the session accepted)."""
        return self.providers[0]

    def run_batch(self, items: Sequence[PreparedInputs]) -> list[dict[str, np.ndarray]]:
        """Stack items into one batch, run it, split the outputs back per item."""
        input_ids = np.stack([i.input_ids for i in items])
        attention_mask = np.stack([i.attention_mask for i in items])
        if self.dynamic_text:
            input_ids, attention_mask = trim_padding(input_ids, attention_mask)
        feeds = {
            "pixel_values": np.stack([i.pixel_values for i in items]),
            "input_ids": input_ids,
            "attention_mask": attention_mask,
        }
        values = self._run_bound(feeds) if self.io_binding else self.session.run(
            self.output_names, feeds
        )
        for name, value in zip(self.output_names, values, strict=True):
            if value.shape[0] != len(items):
                raise RuntimeError(f"output {name} has batch {value.shape[0]}, not {len(items)}")
        return [
            {name: value[row] for name, value in zip(self.output_names, values, strict=True)}
            for row in range(len(items))
        ]


    def _run_bound(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One run through an IOBinding: inputs are copied to the provider's device once,
        outputs are allocated there and copied back once, with no per-run allocation of
        onnxruntime's own feed and fetch structures."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    @property
    def device(self) -> str:
        """onnxruntime's device name for where the graph runs ('cuda' or 'cpu')."""
        return "cuda" if self.provider in GPU_PROVIDERS else "cpu"


def uses_io_binding(setting: str, provider: str) -> bool:
    """`auto` binds on GPU providers only: on the CPU the binding saves nothing measurable."""
    if setting == "auto":
        return provider in GPU_PROVIDERS
    return setting == "on"


def load_onnx_model(bundle_dir: Path, manifest: Manifest, settings: Settings) -> OnnxModel:
    """Create the session with the configured providers, threads, optimisation and precision."""
    path, precision = choose_model_file(bundle_dir, manifest, settings.precision)
    providers, missing = resolve_providers(settings.providers)
    if missing:
        logger.warning(
            "requested execution providers not available here: %s; using %s",
            missing,
            providers,
        )
    with ort_logs_to_logger():  # its C++ log lines go through our JSON logger
        session = ort.InferenceSession(
            str(path), sess_options=session_options(settings), providers=providers
        )
    input_names = {i.name for i in session.get_inputs()}
    if not set(INPUT_NAMES) <= input_names:
        raise ValueError(f"graph inputs {sorted(input_names)} lack {sorted(INPUT_NAMES)}")
    wanted = [t.output for t in manifest.tasks]
    if manifest.modality_weights_output:
        wanted.append(manifest.modality_weights_output)
    graph_outputs = {o.name for o in session.get_outputs()}
    if missing_outputs := [w for w in wanted if w not in graph_outputs]:
        raise ValueError(f"graph lacks outputs named in the manifest: {missing_outputs}")
    model = OnnxModel(session, wanted, precision, path.name, has_dynamic_text(session))
    model.io_binding = uses_io_binding(settings.io_binding, model.provider)
    return model


def has_dynamic_text(session: ort.InferenceSession) -> bool:
    """True when input_ids' sequence axis is symbolic (bundles exported since variable-length
    text); older bundles fix it and must be fed the manifest's full length."""
    shape = next(i.shape for i in session.get_inputs() if i.name == "input_ids")
    return len(shape) == 2 and not isinstance(shape[1], int)
