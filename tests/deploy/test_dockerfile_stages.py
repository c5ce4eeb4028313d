"""The Dockerfile reader the CI replay and the property tests share."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
ENV A=1 \\
    PATH=/opt/venv/bin:$PATH
# a comment between instructions
RUN echo one \\
    && echo two
FROM build AS final
HEALTHCHECK --interval=5s --retries=2 CMD ["python", "-c", "print(1)"]
ENTRYPOINT ["app"]
CMD ["serve"]
"""


def test_parse_stages_args_continuations_and_env(
    dockerfile_stages: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    preamble, stages = dockerfile_stages.parse(path)
    assert [i.keyword for i in preamble] == ["ARG"]
    assert list(stages) == ["build", "final"]
    assert stages["build"].base == "python:3.11-slim"
    assert stages["final"].base == "build"
    assert stages["build"].all("RUN") == ["echo one  && echo two"]
    env = dockerfile_stages.env_of(stages["build"], {"PATH": "/usr/bin"})
    assert env == {"A": "1", "PATH": "/opt/venv/bin:/usr/bin"}
    options, command = dockerfile_stages.healthcheck(stages["final"])
    assert options == {"interval": "5s", "retries": "2"}
    assert command == ["python", "-c", "print(1)"]
    assert dockerfile_stages.exec_form(stages["final"].last("ENTRYPOINT")) == ["app"]


def test_substitute_defaults(dockerfile_stages: ModuleType) -> None:
    sub = dockerfile_stages.substitute
    assert sub("${X:-fallback}/$Y", {"Y": "y"}) == "fallback/y"
    assert sub("${X:-fallback}", {"X": "set"}) == "set"


def test_shell_form_is_rejected(dockerfile_stages: ModuleType) -> None:
    with pytest.raises(ValueError):
        dockerfile_stages.exec_form("fusionserve serve")
