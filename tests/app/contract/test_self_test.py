"""The typed self-test: one case per graph (fp32, int8), compared one way everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.contract.manifest import Manifest
from app.contract.self_test import (
    INT8_CROSS_CPU_TOLERANCE,
    INT8_VS_FP32_TOLERANCE,
    bundle_self_test_inputs,
    compare,
    self_test_case,
    self_test_cases,
)


def test_cases_are_typed_per_graph(tiny_bundle_dir: Path) -> None:
    manifest = Manifest.load(tiny_bundle_dir / "wound-student")
    fp32, int8 = self_test_cases(manifest)
    assert (fp32.precision, fp32.model_file, fp32.tolerance) == ("fp32", "model.onnx", 1e-4)
    assert (int8.precision, int8.model_file) == ("int8", "model.int8.onnx")
    assert int8.expected == manifest.self_test.expected_int8  # type: ignore[union-attr]
    assert int8.tolerance == INT8_CROSS_CPU_TOLERANCE  # recorded 2e-3, raised to the floor
    assert self_test_cases(Manifest.load(tiny_bundle_dir / "medpix-student")) == [
        self_test_case(Manifest.load(tiny_bundle_dir / "medpix-student"), "fp32")
    ]


def test_int8_without_its_own_record_is_held_to_fp32(tiny_bundle_dir: Path) -> None:
    manifest = Manifest.load(tiny_bundle_dir / "wound-student")
    assert manifest.self_test is not None
    manifest.self_test.expected_int8 = None
    case = self_test_case(manifest, "int8")
    assert case is not None and case.expected == manifest.self_test.expected
    assert case.tolerance == INT8_VS_FP32_TOLERANCE


def test_absent_int8_record_stays_absent_in_the_manifest(tiny_bundle_dir: Path) -> None:
    def recorded(name: str) -> dict[str, object]:
        return json.loads((tiny_bundle_dir / name / "manifest.json").read_text())["self_test"]

    assert "expected_int8" not in recorded("medpix-student")
    assert "labels" not in recorded("medpix-student")
    assert "expected_int8" in recorded("wound-student")


def test_compare_passes_the_graph_and_names_a_changed_output(tiny_bundle_dir: Path) -> None:
    bundle = tiny_bundle_dir / "medpix-student"
    manifest = Manifest.load(bundle)
    case = self_test_case(manifest, "fp32")
    assert case is not None
    session = ort.InferenceSession(str(bundle / case.model_file))
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, bundle_self_test_inputs(bundle, manifest))
    row = {name: value[0] for name, value in zip(names, outputs, strict=True)}
    worst, mismatches = compare(case, manifest, row)
    assert worst <= case.tolerance and mismatches == []
    row["probs_modality"] = np.asarray(row["probs_modality"]) + 0.01
    _, mismatches = compare(case, manifest, row)
    assert [m.output for m in mismatches] == ["probs_modality"]
    assert mismatches[0].problem.startswith("differs from the recorded output by 1.00e-02")
