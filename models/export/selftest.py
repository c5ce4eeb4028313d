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

from app.contract.image import decode_image, image_to_array
from app.contract.manifest import Preprocessing, SelfTest
from app.contract.text import TextEncoder
from models.data import Sample
from models.export.onnx_export import CalibratedProbabilities
from models.export.ort_eval import max_abs_diff, run_session, run_torch

SELF_TEST_STEM = "self_test"
FP32_TOLERANCE = 1e-4
# Dynamic int8 uses different integer kernels per CPU ISA (see app.verify_cli): 1e-2 seen.
INT8_TOLERANCE = 3e-2


def choose_sample(samples: Sequence[Sample]) -> Sample:
    """The dev sample with the smallest image file (keeps the bundle small), ties by path."""
    return min(samples, key=lambda s: (s.image_path.stat().st_size, str(s.image_path)))


def contract_inputs(
    image_path: Path, text: str, tokenizer_path: Path, pre: Preprocessing
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-of-one inputs exactly as the service computes them."""
    image = decode_image(image_path.read_bytes())
    pixels = image_to_array(image, pre.image_size, pre.mean, pre.std)[None]
    encoded = TextEncoder.from_file(tokenizer_path, pre.max_text_length, pre.empty_text).encode(
        [text]
    )
    return pixels, encoded.input_ids, encoded.attention_mask


def _first_row(outputs: dict[str, np.ndarray]) -> dict[str, list[float]]:
    return {name: [float(x) for x in value[0]] for name, value in outputs.items()}


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
    inputs = contract_inputs(bundle_dir / image_name, sample.text, tokenizer_path, pre)
    expected = run_torch(wrapper, *inputs)
    got = run_session(fp32, *inputs)
    diff = max_abs_diff(got, expected)
    if diff > FP32_TOLERANCE:
        raise RuntimeError(
            f"self-test sample: onnxruntime differs from PyTorch by {diff:.2e} (> {FP32_TOLERANCE})"
        )
    extra: dict[str, object] = {"onnxruntime_max_abs_diff": diff}
    if labels is not None:
        extra["labels"] = labels
    if int8 is not None:
        extra["expected_int8"] = _first_row(run_session(int8, *inputs))
        extra["tolerance_int8"] = INT8_TOLERANCE
    return SelfTest(
        image=image_name,
        text=sample.text,
        expected=_first_row(expected),
        tolerance=FP32_TOLERANCE,
        **extra,
    )
