"""The bundle's self-test: one real dev sample, preprocessed by the serving contract.

`fusionserve verify` (torch-free) re-runs this sample through `app.contract` preprocessing and
onnxruntime and compares with what is recorded here. The fp32 expectation comes from eager
PyTorch — the model the bundle claims to be — so verify checks the graph against the model,
not against itself; the int8 expectation can only come from the int8 graph.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.contract.domain import DOMAIN_OUTPUTS
from app.contract.graph import INPUT_NAMES
from app.contract.manifest import Preprocessing, SelfTest
from app.contract.self_test import FP32_TOLERANCE, INT8_CROSS_CPU_TOLERANCE, self_test_inputs
from models.data import Sample
from models.export.onnx_export import CalibratedProbabilities
from models.export.ort_eval import max_abs_diff, run_session, run_torch

SELF_TEST_STEM = "self_test"


def choose_sample(samples: Sequence[Sample]) -> Sample:
    """The dev sample with the smallest image file (keeps the bundle small), ties by path."""
    return min(samples, key=lambda s: (s.image_path.stat().st_size, str(s.image_path)))


def _first_row(outputs: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """The sample's recorded outputs; the domain check's parts are recorded as its scores
    instead (`DomainSpec.self_test`), not as hundreds of raw feature values."""
    return {
        name: [float(x) for x in value[0]]
        for name, value in outputs.items()
        if name not in DOMAIN_OUTPUTS
    }


def build_self_test(
    sample: Sample,
    bundle_dir: Path,
    tokenizer_path: Path,
    pre: Preprocessing,
    wrapper: CalibratedProbabilities,
    fp32: ort.InferenceSession,
    int8: ort.InferenceSession | None,
    labels: dict[str, str] | None,
) -> SelfTest:
    """Copy the sample image into the bundle and record the expected outputs (and the
    sample's true labels when it has any; synthetic probes have none)."""
    image_name = f"{SELF_TEST_STEM}{sample.image_path.suffix.lower()}"
    shutil.copyfile(sample.image_path, bundle_dir / image_name)
    image = (bundle_dir / image_name).read_bytes()
    feeds = self_test_inputs(image, sample.text, tokenizer_path, pre)
    pixels, ids, mask = (feeds[name] for name in INPUT_NAMES)
    expected = run_torch(wrapper, pixels, ids, mask)
    got = run_session(fp32, pixels, ids, mask)
    diff = max_abs_diff(got, expected)
    if diff > FP32_TOLERANCE:
        raise RuntimeError(
            f"self-test sample: onnxruntime differs from PyTorch by {diff:.2e} (> {FP32_TOLERANCE})"
        )
    expected_int8 = None if int8 is None else _first_row(run_session(int8, pixels, ids, mask))
    return SelfTest(
        image=image_name,
        text=sample.text,
        expected=_first_row(expected),
        tolerance=FP32_TOLERANCE,
        expected_int8=expected_int8,
        # int8 kernels differ per CPU (app.contract.self_test): the floor is recorded as is
        tolerance_int8=None if int8 is None else INT8_CROSS_CPU_TOLERANCE,
        onnxruntime_max_abs_diff=diff,
        labels=labels,
    )
