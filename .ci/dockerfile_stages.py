"""A small Dockerfile reader: stages, their instructions, ENV and exec-form arrays.

No Docker engine runs in CI, so the CPU image's install is replayed from the Dockerfile itself
(replay_serve_install.py) and its properties are tested (tests/deploy/). Both read the file
through this module so they see the same stages. Only the syntax our Dockerfile uses is handled.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VAR = re.compile(r"\$(?:\{(\w+)(?::-([^}]*))?\}|(\w+))")


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuations joined


@dataclass
class Stage:
    name: str
    base: str  # image reference after ARG substitution
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def substitute(text: str, env: dict[str, str]) -> str:
    """Expand $VAR, ${VAR} and ${VAR:-default} the way Docker does for ARG/ENV."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = env.get(name, "")
        return value if value or default is None else default

    return _VAR.sub(repl, text)


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations; drop comments and blank lines (as Docker does)."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return [line for line in lines if line]


def parse(path: str | Path) -> tuple[list[Instruction], dict[str, Stage]]:
    """Return the global instructions (ARGs before the first FROM) and the stages by name."""
    global_args: dict[str, str] = {}
    preamble: list[Instruction] = []
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical_lines(Path(path).read_text()):
        keyword, _, rest = line.partition(" ")
        instruction = Instruction(keyword.upper(), rest.strip())
        if instruction.keyword == "FROM":
            parts = instruction.args.split()
            base = substitute(parts[0], global_args)
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stage = Stage(name=name, base=base)
            stages[name] = stage
        elif stage is None:
            preamble.append(instruction)
            if instruction.keyword == "ARG":
                key, _, value = instruction.args.partition("=")
                global_args[key] = value
        else:
            stage.instructions.append(instruction)
    return preamble, stages


def env_of(stage: Stage, base_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a stage's ENV lines produce, expanded in order."""
    env = dict(base_env or {})
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            if not sep:
                raise ValueError(f"legacy 'ENV key value' form is not supported: {args!r}")
            env[key] = substitute(value, env)
    return env


def exec_form(args: str) -> list[str]:
    """A JSON exec-form array (ENTRYPOINT, CMD); raises on shell form."""
    value = json.loads(args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not an exec-form array: {args!r}")
    return value


def healthcheck(stage: Stage) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK options (--interval=...) and its exec-form command."""
    args = stage.last("HEALTHCHECK")
    if args is None:
        raise ValueError(f"stage {stage.name} has no HEALTHCHECK")
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise ValueError(f"HEALTHCHECK without CMD: {args!r}")
    return options, exec_form(command.strip())
