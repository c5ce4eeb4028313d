"""The serving package never imports torch, transformers or the training code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import importlib, json, pkgutil, sys
import app
for info in pkgutil.walk_packages(app.__path__, "app."):
    importlib.import_module(info.name)
from app.main import create_app
create_app()
banned = ("torch", "transformers", "models")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
"""


def test_app_package_is_torch_free() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
