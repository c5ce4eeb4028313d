"""Fixtures for the deployment files: the parsed Dockerfile and YAML loaders."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_ci_module(name: str) -> ModuleType:
    """Import a helper from .ci/ (a dot folder, so not importable as a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / ".ci" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="session")
def dockerfile_stages() -> ModuleType:
    return load_ci_module("dockerfile_stages")


@pytest.fixture(scope="session")
def stages(dockerfile_stages: ModuleType) -> dict[str, Any]:
    _, parsed = dockerfile_stages.parse(REPO_ROOT / "Dockerfile")
    return parsed
