"""Every tracked non-Python file inside the shipped packages is declared as package data.

setuptools ships only .py files unless told otherwise, and the tests import the checkout, so a
missing declaration only shows once installed (the demo page answered 500 from a wheel). This is
the fast check; .ci/wheel_install.py builds and serves the real wheel.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "models", "fusionserve")


def tracked_data_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [f for f in listed if not f.endswith(".py")]


def declared(path: str, package_data: dict[str, list[str]]) -> bool:
    """Whether some `package: [glob]` entry ships `path` (globs are relative to the package)."""
    for package, globs in package_data.items():
        prefix = package.replace(".", "/") + "/"
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            # setuptools globs do not cross directories; fnmatch's `*` would
            if any(fnmatch.fnmatchcase(rest, g) and rest.count("/") == g.count("/") for g in globs):
                return True
    return False


def test_every_data_file_in_the_packages_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = config["tool"]["setuptools"].get("package-data", {})
    missing = [f for f in tracked_data_files() if not declared(f, package_data)]
    assert not missing, f"not shipped in the wheel (pyproject package-data): {missing}"


def test_the_demo_page_files_are_data_files() -> None:
    assert "app/ui/static/index.html" in tracked_data_files()
