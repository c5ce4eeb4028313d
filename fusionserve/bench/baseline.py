"""The student bundle as committed at an earlier revision, extracted from git history so the
old and the new bundle are measured in one run, on the same machine, by the same code."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path


class BaselineError(RuntimeError):
    """The revision does not exist or does not hold the bundle."""


def extract_bundle(repo: Path, rev: str, bundle_path: str, dest: Path) -> Path:
    """Write `bundle_path` (repository-relative) as of `rev` under `dest`; return its folder."""
    done = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", bundle_path],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise BaselineError(f"git archive {rev} {bundle_path}: {message}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(dest, filter="data")
    folder = dest / bundle_path
    if not (folder / "manifest.json").is_file():
        raise BaselineError(f"{bundle_path} at {rev} has no manifest.json")
    return folder
