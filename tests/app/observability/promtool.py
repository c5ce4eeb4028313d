"""Run promtool (Debian package `prometheus`) from tests; without it the tests skip, saying why."""

from __future__ import annotations

import shutil
import subprocess

import pytest

MISSING = "promtool not installed (apt-get install -y prometheus)"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip(MISSING)
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
