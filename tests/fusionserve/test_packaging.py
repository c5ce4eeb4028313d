"""The installed distribution: only `app`, `models` and `fusionserve` land in site-packages (the
benchmarks as `fusionserve.bench`, no generic top-level `bench` module)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "app", "models", "fusionserve")


@pytest.mark.slow
def test_wheel_holds_only_the_project_packages(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: setuptools writes build/ and egg-info into its source
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            skip = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, ignore=skip)
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("fusionserve-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"app", "models", "fusionserve"}
    assert "fusionserve/bench/cli.py" in names and "fusionserve/bench/gpu.py" in names
