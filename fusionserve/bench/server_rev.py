"""The server code as committed at an earlier revision, served beside today's from one run.

`git archive` writes that revision's `app/` and `fusionserve/` into a scratch folder; the served
process runs from there (its own modules first on `sys.path`) with this environment's packages,
against the same bundle folder. So the two columns of bench/RESULTS.md differ only in the
server's code, not in the machine, the bundle, the load or the minute they were measured.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from fusionserve.bench.baseline import BaselineError

CODE_PATHS = ("app", "fusionserve")


def extract_server(repo: Path, rev: str, dest: Path) -> Path:
    """Write the server's packages as of `rev` under `dest`; return the folder to run from."""
    done = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", *CODE_PATHS],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise BaselineError(f"git archive {rev} {' '.join(CODE_PATHS)}: {message}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(dest, filter="data")
    if not (dest / "app" / "main.py").is_file():
        raise BaselineError(f"{rev} has no app/main.py")
    return dest


def server_env(folder: Path) -> dict[str, str]:
    """Environment that makes a `python -m fusionserve.cli serve` import the old code."""
    return {"PYTHONPATH": str(folder)}
