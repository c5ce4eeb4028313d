"""Extracting a committed bundle from git history for the old-vs-new benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionserve.bench.baseline import BaselineError, extract_bundle
from fusionserve.bench.suite import REPO_ROOT, bundle_mb


def test_extracts_the_bundle_as_committed(tmp_path: Path) -> None:
    folder = extract_bundle(REPO_ROOT, "HEAD", "exported/wound-student", tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == "wound-student"
    assert {p.name for p in folder.iterdir()} >= set(manifest["files"])
    assert 0 < bundle_mb(folder) < 25


def test_unknown_revision_or_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no-such-rev"):
        extract_bundle(REPO_ROOT, "no-such-rev", "exported/wound-student", tmp_path)
    with pytest.raises(BaselineError):
        extract_bundle(REPO_ROOT, "HEAD", "exported/no-such-bundle", tmp_path)
