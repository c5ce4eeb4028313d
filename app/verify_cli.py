"""`fusionserve verify exported/<name> [...]`: is this bundle exactly what was exported?

Checks, in order: the manifest parses; every file in the folder is listed and every listed
file's sha256 matches; each graph (model.onnx, and model.int8.onnx when the manifest ships it)
loads in onnxruntime with the contract's inputs/outputs; the domain check, when the manifest has
one, loads and matches the manifest (method, version, widths); the manifest's self-test sample,
run through the serving preprocessing (`app.contract`), reproduces the recorded probabilities
and domain scores within tolerance. Exit status 0 only when every bundle passes; each problem
is printed.

Torch-free: this runs where the service runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from app.contract.domain import DomainModel, DomainModelError
from app.contract.domain_bundle import (
    domain_self_test_problems,
    graph_score_problems,
    load_bundle_domain,
)
from app.contract.graph import signature_problems
from app.contract.image import ImageDecodeError
from app.contract.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    Manifest,
    checksum_mismatches,
)
from app.contract.self_test import SelfTestCase, bundle_self_test_inputs, compare, self_test_cases
from app.contract.session import open_session
from app.model_settings import SERVING_FILE


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
    try:
        domain = load_bundle_domain(bundle, manifest)
    except DomainModelError as exc:
        report.problems.append(f"domain check: {exc}")
        return report
    if domain is None:
        report.passed.append("no domain check (none fitted)")
    for case in self_test_cases(manifest):
        _check_model(bundle, manifest, case, report, domain)
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
    if manifest.int8_file is not None:
        required.append(manifest.int8_file)
    if manifest.domain is not None:
        required.append(manifest.domain.file)
    for name in required:
        if name not in manifest.files:
            report.problems.append(f"{name}: not listed in the manifest's files (no sha256)")
    # the manifest and the deployment's own serving settings are not exported artifacts
    unlisted = {MANIFEST_FILE, SERVING_FILE}
    present = {p.name for p in bundle.iterdir() if p.is_file() and p.name not in unlisted}
    for name in sorted(present - set(manifest.files)):
        report.problems.append(f"{name}: file in the bundle but not in the manifest")
    mismatches = checksum_mismatches(bundle, manifest)
    report.problems.extend(mismatches)
    if report.ok:
        report.passed.append(f"sha256 of {len(manifest.files)} files")
    return report.ok


def _check_model(
    bundle: Path,
    manifest: Manifest,
    case: SelfTestCase,
    report: VerifyReport,
    domain: DomainModel | None = None,
) -> None:
    file_name = case.model_file
    try:
        session = open_session(bundle / file_name)
    except Exception as exc:  # onnxruntime raises its own exception types
        report.problems.append(f"{file_name}: onnxruntime cannot load it: {exc}")
        return
    if signature := signature_problems(session, manifest):
        report.problems.extend(f"{file_name}: {problem}" for problem in signature)
        return
    try:
        feeds = bundle_self_test_inputs(bundle, manifest)
    except (ImageDecodeError, OSError, ValueError) as exc:
        report.problems.append(f"self-test inputs cannot be prepared: {exc}")
        return
    names = [o.name for o in session.get_outputs()]
    row = {name: value[0] for name, value in zip(names, session.run(names, feeds), strict=True)}
    worst, mismatches = compare(case, manifest, row)
    for mismatch in mismatches:
        report.problems.append(f"{file_name}: self-test {mismatch.output} {mismatch.problem}")
    if domain is not None:
        scores = {
            s: float(v[0])
            for s, v in domain.scores({k: row[k][None] for k in domain.widths()}).items()
        }
        for problem in domain_self_test_problems(manifest, case.precision, scores):
            report.problems.append(f"{file_name}: self-test {problem}")
        if manifest.domain is not None and manifest.domain.scores_in_graph:
            for problem in graph_score_problems(scores, row):
                report.problems.append(f"{file_name}: {problem}")
    if report.ok:
        report.passed.append(f"{file_name} self-test max |Δ| {worst:.1e} ≤ {case.tolerance:.0e}")
        if domain is not None:
            shown = ", ".join(f"{side} {value:.3f}" for side, value in scores.items())
            report.passed.append(f"{file_name} domain scores {shown} as recorded")
