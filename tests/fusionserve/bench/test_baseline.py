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


def test_server_rev_overlay_takes_named_files_from_head(tmp_path: Path) -> None:
    """The old server's code, with only the named files as this commit has them."""
    import subprocess

    from fusionserve.bench.server_rev import extract_server, overlay

    folder = extract_server(REPO_ROOT, "HEAD~1", tmp_path)
    overlay(REPO_ROOT, ("app/main.py",), folder)
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", "HEAD:app/main.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (folder / "app" / "main.py").read_text() == head
    assert (folder / "app" / "batcher.py").is_file()  # the rest is the old revision's
