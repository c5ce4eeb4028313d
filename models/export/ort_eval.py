"""Run a bundle graph with onnxruntime over in-memory arrays, and compare it with PyTorch.

The export path judges the graph the service will load, not the PyTorch model: dev metrics,
int8 metrics and parity are all computed from onnxruntime outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from app.contract.graph import graph_feeds
from app.contract.session import RuntimeOptions, open_session
from models.export.onnx_export import CalibratedProbabilities


def make_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session opened as the service opens it; `threads` intra-op threads (default: one
    per core, export has the machine to itself)."""
    options = RuntimeOptions(intra_op_threads=threads or os.cpu_count() or 1, inter_op_threads=1)
    return open_session(path, options)


def run_session(
    session: ort.InferenceSession,
    pixel_values: np.ndarray,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """All graph outputs for N rows, computed in batches of `batch_size`."""
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, len(input_ids), batch_size):
        rows = slice(start, start + batch_size)
        feeds = graph_feeds(pixel_values[rows], input_ids[rows], attention_mask[rows])
        for name, value in zip(names, session.run(names, feeds), strict=True):
            parts[name].append(value)
    return {n: np.concatenate(v) for n, v in parts.items()}


@torch.no_grad()
def run_torch(
    wrapper: CalibratedProbabilities,
    pixel_values: np.ndarray,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """The same outputs from eager PyTorch (the reference for parity)."""
    wrapper.eval()
    parts: dict[str, list[np.ndarray]] = {n: [] for n in wrapper.output_names}
    for start in range(0, len(input_ids), batch_size):
        rows = slice(start, start + batch_size)
        outs = wrapper(
            torch.from_numpy(np.ascontiguousarray(pixel_values[rows], dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(input_ids[rows], dtype=np.int64)),
            torch.from_numpy(np.ascontiguousarray(attention_mask[rows], dtype=np.int64)),
        )
        for name, value in zip(wrapper.output_names, outs, strict=True):
            parts[name].append(value.numpy())
    return {n: np.concatenate(v) for n, v in parts.items()}


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    if set(a) != set(b):
        raise ValueError(f"output names differ: {sorted(a)} vs {sorted(b)}")
    return max(float(np.abs(a[n].astype(np.float64) - b[n]).max()) for n in a)


def parity_by_batch(
    session: ort.InferenceSession,
    wrapper: CalibratedProbabilities,
    pixel_values: np.ndarray,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    batch_sizes: Sequence[int] = (1, 7, 32),
) -> dict[str, float]:
    """max |ORT − PyTorch| over all outputs, one ORT call per batch size on the first B rows."""
    result: dict[str, float] = {}
    for size in batch_sizes:
        if size > len(input_ids):
            raise ValueError(f"parity at batch {size} needs {size} samples, got {len(input_ids)}")
        rows = slice(0, size)
        args = (pixel_values[rows], input_ids[rows], attention_mask[rows])
        onnx_out = run_session(session, *args, batch_size=size)
        torch_out = run_torch(wrapper, *args, batch_size=size)
        result[str(size)] = max_abs_diff(onnx_out, torch_out)
    return result
