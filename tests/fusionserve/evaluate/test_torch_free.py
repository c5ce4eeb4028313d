"""`fusionserve evaluate` judges ONNX bundles: none of its modules may pull in torch."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fusionserve.evaluate.conftest import REPO_ROOT

SCRIPT = """
import importlib, json, pkgutil, sys
import fusionserve.evaluate as package
for info in pkgutil.walk_packages(package.__path__, "fusionserve.evaluate."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))))
"""


def test_evaluate_package_is_torch_free() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
