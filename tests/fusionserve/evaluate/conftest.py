"""Fixtures for evaluation tests: tiny real ONNX bundles and a runner for the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fusionserve.cli import main

REPO_ROOT = Path(__file__).resolve().parents[3]
EXPORTED = REPO_ROOT / "exported"
Evaluate = Callable[..., tuple[int, dict[str, Any] | None]]


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real tiny graphs: medpix-student and wound-student (random weights)."""
    pytest.importorskip("onnx", reason="building the tiny bundles needs the onnx package")
    from tests.fixtures.tiny_bundle import build_tiny_bundle

    root = tmp_path_factory.mktemp("evaluate-bundles")
    build_tiny_bundle(root, "medpix", "student", seed=1)
    build_tiny_bundle(root, "wound", "student", seed=3)
    return root


@pytest.fixture
def run_evaluate(tmp_path: Path) -> Evaluate:
    """Run `fusionserve evaluate ARGS --out <tmp>/NAME`; (exit status, report.json or None)."""

    def run(*args: str, out: str = "report") -> tuple[int, dict[str, Any] | None]:
        target = tmp_path / out
        status = main(["evaluate", *args, "--out", str(target), "--no-progress"])
        report = target / "report.json"
        return status, json.loads(report.read_text()) if report.is_file() else None

    return run
