"""A freshly opened graph must answer the bundle's self-test before it serves.

The sample goes through serving's own path (prepare, batch, run), at batch 1 and at an odd
batch > 1, so a wrong preprocessing, a graph exported with a fixed batch axis or a graph that
differs from the exported one fails here, with the reason shown in /models and /health.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from app.bundle_error import BundleError
from app.contract.manifest import Manifest
from app.contract.self_test import SELF_TEST_LIMITS, compare, self_test_case
from app.contract.session import CPU
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.runtime import OnnxModel

WARMUP_BATCH = 3  # odd and > 1: catches graphs exported with a fixed batch axis
Outputs = dict[str, np.ndarray]


def warm_up(bundle_dir: Path, manifest: Manifest, inputs: InputSpec, onnx: OnnxModel) -> None:
    """Run the self-test sample (or a blank item) and check the outputs; raises BundleError."""
    item = _sample_item(bundle_dir, manifest, inputs)
    try:
        single = onnx.run_batch([item])
        several = onnx.run_batch([item] * WARMUP_BATCH)
    except Exception as exc:
        raise BundleError(f"warm-up inference failed: {exc}") from None
    _check_probabilities(manifest, single + several)
    case = self_test_case(manifest, "int8" if onnx.precision == "int8" else "fp32")
    if case is None or onnx.provider != CPU:  # other devices round differently
        return
    _, mismatches = compare(case, manifest, single[0])
    if mismatches:
        first = mismatches[0]
        raise BundleError(
            f"self-test mismatch on {first.output}: {first.problem} "
            "(preprocessing or graph differs from export)"
        )


def _sample_item(bundle_dir: Path, manifest: Manifest, inputs: InputSpec) -> PreparedInputs:
    sample = manifest.self_test
    if sample is not None:
        relaxed = dataclasses.replace(inputs, limits=SELF_TEST_LIMITS)
        return prepare((bundle_dir / sample.image).read_bytes(), sample.text, relaxed)
    size = manifest.preprocessing.image_size
    blank = np.zeros((3, size, size), dtype=np.float32)
    encoded = inputs.encoder.encode([""])
    return PreparedInputs(blank, encoded.input_ids[0], encoded.attention_mask[0], 0, 0, False)


def _check_probabilities(manifest: Manifest, outputs: list[Outputs]) -> None:
    for row in outputs:
        for spec in manifest.tasks:
            probs = np.asarray(row[spec.output], dtype=np.float64)
            if probs.shape != (len(spec.labels),) or not np.all(np.isfinite(probs)):
                raise BundleError(f"warm-up: {spec.output} has shape {probs.shape} or NaNs")
            if abs(float(probs.sum()) - 1.0) > 1e-3:
                raise BundleError(f"warm-up: {spec.output} sums to {probs.sum():.4f}, not 1")
