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
from app.contract.domain import DomainModel
from app.contract.domain_bundle import domain_self_test_problems, item_scores
from app.contract.manifest import Manifest
from app.contract.self_test import SELF_TEST_LIMITS, compare, self_test_case
from app.contract.session import CPU
from app.loaded_bundle import add_domain_scores
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.runtime import OnnxModel

WARMUP_BATCH = 3  # odd and > 1: catches graphs exported with a fixed batch axis
Outputs = dict[str, np.ndarray]


def warm_up(
    bundle_dir: Path,
    manifest: Manifest,
    inputs: InputSpec,
    onnx: OnnxModel,
    domain: DomainModel | None = None,
) -> None:
    """Run the self-test sample (or a blank item) and check the outputs, and the domain
    scores when the bundle has a domain check; raises BundleError."""
    item = _sample_item(bundle_dir, manifest, inputs)
    try:
        single = onnx.run_batch([item])
        several = onnx.run_batch([item] * WARMUP_BATCH)
    except Exception as exc:
        raise BundleError(f"warm-up inference failed: {exc}") from None
    _check_probabilities(manifest, single + several)
    scores = _domain_scores(domain, single)
    if onnx.provider != CPU:  # other devices round differently
        return
    case = self_test_case(manifest, "int8" if onnx.precision == "int8" else "fp32")
    if case is None:
        return
    _, mismatches = compare(case, manifest, single[0])
    if mismatches:
        first = mismatches[0]
        raise BundleError(
            f"self-test mismatch on {first.output}: {first.problem} "
            "(preprocessing or graph differs from export)"
        )
    problems = [] if scores is None else domain_self_test_problems(manifest, case.precision, scores)
    if problems:
        raise BundleError(f"self-test mismatch: {problems[0]}")


def _domain_scores(domain: DomainModel | None, rows: list[Outputs]) -> dict[str, float] | None:
    """The sample's per-side domain scores (finite, or BundleError); None without a check."""
    if domain is None:
        return None
    scored = [dict(row) for row in rows]
    add_domain_scores(domain, scored)
    scores = item_scores(scored[0])
    if not all(np.isfinite(v) for v in scores.values()):
        raise BundleError(f"warm-up: domain scores are not finite: {scores}")
    return scores


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
