"""The student bundle as committed at an earlier revision, extracted from git history so the
old and the new bundle are measured in one run, on the same machine, by the same code."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path


class BaselineError(RuntimeError):
    """The revision does not exist or does not hold the bundle."""


def git_archive(repo: Path, rev: str, paths: tuple[str, ...], dest: Path) -> None:
    """Write `paths` (repository-relative) as of `rev` under `dest`."""
    done = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", *paths],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise BaselineError(f"git archive {rev} {' '.join(paths)}: {message}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(dest, filter="data")


def extract_bundle(repo: Path, rev: str, bundle_path: str, dest: Path) -> Path:
    """Write `bundle_path` (repository-relative) as of `rev` under `dest`; return its folder."""
    git_archive(repo, rev, (bundle_path,), dest)
    folder = dest / bundle_path
    if not (folder / "manifest.json").is_file():
        raise BaselineError(f"{bundle_path} at {rev} has no manifest.json")
    return folder
