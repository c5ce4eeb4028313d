"""A bundle graph as the service runs it: precision (fp32 / int8), I/O binding, and the one
function that runs a batch. Sessions are opened by the contract (`app.contract.session`).

The batch function is called from the model's own inference threads (app.batcher; with
concurrent runs, from several at once on the one session, whose `run` is thread-safe), never
from the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import onnxruntime as ort

from app.contract.graph import (
    graph_feeds,
    has_dynamic_text,
    output_widths,
    served_domain_outputs,
    signature_problems,
)
from app.contract.manifest import INT8_MODEL_FILE, MODEL_FILE, Manifest
from app.contract.session import GPU_PROVIDERS, GraphOptimization, RuntimeOptions, open_session
from app.contract.text import trim_padding
from app.ort_logs import ort_logs_to_logger
from app.preprocess import PreparedInputs

logger = logging.getLogger("fusionserve.runtime")


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
        feeds = graph_feeds(np.stack([i.pixel_values for i in items]), input_ids, attention_mask)
        values = (
            self._run_bound(feeds)
            if self.io_binding
            else self.session.run(self.output_names, feeds)
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
        binding, device = self.session.io_binding(), self.device
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, device)
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


class RuntimeSettings(Protocol):
    """What opening a served graph reads: a bundle's `ModelSettings` (or the global Settings)."""

    @property
    def precision(self) -> Literal["fp32", "int8"]: ...
    @property
    def providers(self) -> list[str]: ...
    @property
    def intra_op_threads(self) -> int: ...
    @property
    def inter_op_threads(self) -> int: ...
    @property
    def graph_optimization(self) -> GraphOptimization: ...
    @property
    def io_binding(self) -> Literal["auto", "on", "off"]: ...


def runtime_options(settings: RuntimeSettings) -> RuntimeOptions:
    return RuntimeOptions(
        tuple(settings.providers),
        settings.intra_op_threads,
        settings.inter_op_threads,
        settings.graph_optimization,
    )


def load_onnx_model(bundle_dir: Path, manifest: Manifest, settings: RuntimeSettings) -> OnnxModel:
    """Open the graph for the configured precision with the configured runtime options; its
    signature must be the contract's and name the manifest's outputs."""
    path, precision = choose_model_file(bundle_dir, manifest, settings.precision)
    with ort_logs_to_logger():  # its C++ log lines go through our JSON logger
        session = open_session(path, runtime_options(settings))
    if problems := signature_problems(session, manifest):
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    outputs = list(output_widths(manifest)) + served_domain_outputs(manifest)
    bound = uses_io_binding(settings.io_binding, session.get_providers()[0])
    return OnnxModel(session, outputs, precision, path.name, has_dynamic_text(session), bound)
