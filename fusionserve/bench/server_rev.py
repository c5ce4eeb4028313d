"""The server code as committed at an earlier revision, served beside today's from one run.

`git archive` writes that revision's `app/` and `fusionserve/` into a scratch folder; the served
process runs from there (its own modules first on `sys.path`) with this environment's packages,
against the same bundle folder (with `--server-rev-overlay`, the bundle-reading files named
there come from this commit, when the bundle format moved on since that revision). So the two
columns of bench/RESULTS.md differ only in the server's code, not in the machine, the bundle,
the load or the minute they were measured.
"""

from __future__ import annotations

from pathlib import Path

from fusionserve.bench.baseline import BaselineError, git_archive

CODE_PATHS = ("app", "fusionserve")


def extract_server(repo: Path, rev: str, dest: Path) -> Path:
    """Write the server's packages as of `rev` under `dest`; return the folder to run from."""
    git_archive(repo, rev, CODE_PATHS, dest)
    if not (dest / "app" / "main.py").is_file():
        raise BaselineError(f"{rev} has no app/main.py")
    return dest


def overlay(repo: Path, paths: tuple[str, ...], dest: Path) -> None:
    """Replace `paths` in the extracted server by this checkout's committed ones (HEAD): for a
    bundle format the old revision cannot read (its model contract), so the two servers still
    differ only in their HTTP path."""
    if paths:
        git_archive(repo, "HEAD", paths, dest)


def server_env(folder: Path) -> dict[str, str]:
    """Environment that makes a `python -m fusionserve.cli serve` import the old code."""
    return {"PYTHONPATH": str(folder)}
