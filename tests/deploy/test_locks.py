"""The serving locks: a complete, pinned, torch-free closure of the `serve` extra."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements"
FORBIDDEN = {"torch", "transformers", "onnx", "onnxscript", "scikit-learn", "pytest"}


def read_lock(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REQUIREMENTS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # exactly one specifier ...
        assert spec.operator == "==", line  # ... and it is a pin
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_cpu_lock_pins_every_base_and_serve_requirement() -> None:
    pins = read_lock("serve.lock")
    project = pyproject()["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["serve"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from serve.lock: run requirements/lock.sh"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


def test_locks_are_torch_free() -> None:
    for lock in ("serve.lock", "serve-gpu.lock"):
        assert not FORBIDDEN & set(read_lock(lock)), lock


def test_gpu_lock_swaps_only_onnxruntime() -> None:
    cpu, gpu = read_lock("serve.lock"), read_lock("serve-gpu.lock")
    assert "onnxruntime" not in gpu and "onnxruntime-gpu" not in cpu
    assert {k: v for k, v in cpu.items() if k != "onnxruntime"} == {
        k: v for k, v in gpu.items() if k != "onnxruntime-gpu"
    }
    serve_spec = next(
        Requirement(r)
        for r in pyproject()["project"]["optional-dependencies"]["serve"]
        if r.startswith("onnxruntime")
    )
    assert serve_spec.specifier.contains(gpu["onnxruntime-gpu"])


def test_build_lock_satisfies_the_build_system() -> None:
    pins = read_lock("build.lock")
    assert set(pins) == {"pip", "setuptools"}
    for requirement in map(Requirement, pyproject()["build-system"]["requires"]):
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)])
