"""`fusionserve verify exported/<name> [...]`: is this bundle exactly what was exported?

Checks, in order: the manifest parses; every file in the folder is listed and every listed
file's sha256 matches; each graph (model.onnx, and model.int8.onnx when the manifest ships it)
loads in onnxruntime with the contract's inputs/outputs; the manifest's self-test sample, run
through the serving preprocessing (`app.contract`), reproduces the recorded probabilities
within tolerance. Exit status 0 only when every bundle passes; each problem is printed.

Torch-free: this runs where the service runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.contract.graph import INPUT_NAMES
from app.contract.image import ImageDecodeError
from app.contract.manifest import (
    INT8_MODEL_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    Manifest,
    checksum_mismatches,
)
from app.contract.self_test import self_test_inputs

DEFAULT_INT8_TOLERANCE = 2e-3  # int8 graph vs its own recorded self-test output
# Dynamic int8 runs different integer kernels per CPU (AVX2 u8s8 vs AVX-512 VNNI): the committed
# MedPix student's recorded int8 output is 1.05e-2 away on an AVX2-only AMD EPYC; fp32 agrees
# to 5e-7 there. Below this floor a recorded int8 tolerance only holds on the exporting CPU.
INT8_CROSS_CPU_TOLERANCE = 3e-2
INT8_VS_FP32_TOLERANCE = 5e-2  # int8 graph vs the fp32 expectation (no int8 one recorded)


@dataclass
class VerifyReport:
    bundle: Path
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundles",
        nargs="+",
        metavar="BUNDLE",
        help="bundle folder(s), or a folder of bundles such as exported/",
    )


def run(args: argparse.Namespace) -> int:
    reports = [verify_bundle(path) for path in expand_bundles(args.bundles)]
    for report in reports:
        if report.ok:
            print(f"OK   {report.bundle}: " + "; ".join(report.passed))
        else:
            print(f"FAIL {report.bundle}:", file=sys.stderr)
            for problem in report.problems:
                print(f"  - {problem}", file=sys.stderr)
    return 0 if reports and all(r.ok for r in reports) else 1


def expand_bundles(paths: list[str]) -> list[Path]:
    """A bundle folder stays as is; a folder of bundles becomes its bundle subfolders."""
    result: list[Path] = []
    for raw in paths:
        path = Path(raw)
        children = (
            sorted(p.parent for p in path.glob(f"*/{MANIFEST_FILE}"))
            if path.is_dir() and not (path / MANIFEST_FILE).exists()
            else []
        )
        result.extend(children or [path])
    return result


def verify_bundle(bundle_dir: str | Path) -> VerifyReport:
    bundle = Path(bundle_dir)
    report = VerifyReport(bundle)
    manifest = _load_manifest(bundle, report)
    if manifest is None:
        return report
    if not _check_files(bundle, manifest, report):
        return report  # never run a graph whose bytes are not the exported ones
    st = manifest.self_test
    models: list[tuple[str, Any, float | None]] = [(MODEL_FILE, st.expected if st else None, None)]
    if manifest.int8 is not None:
        extra = (st.model_extra or {}) if st is not None else {}
        if "expected_int8" in extra:
            recorded = float(extra.get("tolerance_int8", DEFAULT_INT8_TOLERANCE))
            int8_tol = max(recorded, INT8_CROSS_CPU_TOLERANCE)
            models.append((INT8_MODEL_FILE, extra["expected_int8"], int8_tol))
        else:  # a bundle from another tool: hold the int8 graph to the fp32 expectation
            models.append((INT8_MODEL_FILE, st.expected if st else None, INT8_VS_FP32_TOLERANCE))
    for file_name, expected, tolerance in models:
        _check_model(bundle, manifest, file_name, expected, tolerance, report)
    return report


def _load_manifest(bundle: Path, report: VerifyReport) -> Manifest | None:
    if not bundle.is_dir():
        report.problems.append(f"{bundle} is not a folder")
        return None
    try:
        return Manifest.load(bundle)
    except FileNotFoundError:
        report.problems.append(f"{MANIFEST_FILE} is missing")
    except json.JSONDecodeError as exc:
        report.problems.append(f"{MANIFEST_FILE} is not valid JSON: {exc}")
    except ValidationError as exc:
        report.problems.append(f"{MANIFEST_FILE} does not match the schema: {exc}")
    return None


def _check_files(bundle: Path, manifest: Manifest, report: VerifyReport) -> bool:
    required = [MODEL_FILE, TOKENIZER_FILE]
    if manifest.self_test is not None:
        required.append(manifest.self_test.image)
    else:
        report.problems.append("manifest has no self_test sample")
    if manifest.int8 is not None:
        required.append(str(manifest.int8.get("file", INT8_MODEL_FILE)))
    for name in required:
        if name not in manifest.files:
            report.problems.append(f"{name}: not listed in the manifest's files (no sha256)")
    present = {p.name for p in bundle.iterdir() if p.is_file() and p.name != MANIFEST_FILE}
    for name in sorted(present - set(manifest.files)):
        report.problems.append(f"{name}: file in the bundle but not in the manifest")
    mismatches = checksum_mismatches(bundle, manifest)
    report.problems.extend(mismatches)
    if report.ok:
        report.passed.append(f"sha256 of {len(manifest.files)} files")
    return report.ok


def _self_test_inputs(bundle: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    assert manifest.self_test is not None
    image = (bundle / manifest.self_test.image).read_bytes()
    return self_test_inputs(
        image, manifest.self_test.text, bundle / TOKENIZER_FILE, manifest.preprocessing
    )


def _expected_outputs(manifest: Manifest) -> dict[str, int]:
    """Output name → width the contract requires."""
    widths = {task.output: len(task.labels) for task in manifest.tasks}
    if manifest.modality_weights_output:
        widths[manifest.modality_weights_output] = 2
    return widths


def _check_signature(session: Any, manifest: Manifest, file_name: str) -> list[str]:
    problems = []
    inputs = {i.name: i.shape for i in session.get_inputs()}
    if list(inputs) != list(INPUT_NAMES):
        problems.append(f"{file_name}: inputs {list(inputs)}, expected {list(INPUT_NAMES)}")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    for name, width in _expected_outputs(manifest).items():
        if name not in outputs:
            problems.append(f"{file_name}: output {name!r} named in the manifest is missing")
        elif outputs[name][-1] != width:
            problems.append(
                f"{file_name}: output {name!r} has shape {outputs[name]}, "
                f"the manifest implies [batch, {width}]"
            )
    return problems


def _check_model(
    bundle: Path,
    manifest: Manifest,
    file_name: str,
    expected: dict[str, list[float]] | None,
    tolerance: float | None,
    report: VerifyReport,
) -> None:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(bundle / file_name), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        report.problems.append(f"{file_name}: onnxruntime cannot load it: {exc}")
        return
    signature = _check_signature(session, manifest, file_name)
    if signature:
        report.problems.extend(signature)
        return
    if manifest.self_test is None or expected is None:
        report.problems.append(f"{file_name}: the manifest records no self-test output for it")
        return
    tol = manifest.self_test.tolerance if tolerance is None else tolerance
    try:
        feeds = _self_test_inputs(bundle, manifest)
    except (ImageDecodeError, OSError, ValueError) as exc:
        report.problems.append(f"self-test inputs cannot be prepared: {exc}")
        return
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(names, feeds), strict=True))
    worst = 0.0
    for name in _expected_outputs(manifest):
        if name not in expected:
            report.problems.append(f"{file_name}: self-test records no expected {name!r}")
            continue
        want = np.asarray(expected[name], dtype=np.float64)
        have = got[name][0].astype(np.float64)
        if want.shape != have.shape:
            report.problems.append(
                f"{file_name}: self-test {name} has {have.shape[0]} values, "
                f"expected {want.shape[0]}"
            )
            continue
        diff = float(np.abs(have - want).max())
        worst = max(worst, diff)
        if diff > tol:
            report.problems.append(
                f"{file_name}: self-test {name} differs from the recorded output by "
                f"{diff:.2e} (tolerance {tol:.0e}): got {np.round(have, 6).tolist()}, "
                f"recorded {np.round(want, 6).tolist()}"
            )
    if report.ok:
        report.passed.append(f"{file_name} self-test max |Δ| {worst:.1e} ≤ {tol:.0e}")
