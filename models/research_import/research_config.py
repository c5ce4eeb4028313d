"""A research run's YAML (docs/spec.md §7) → the architecture of its teacher or student.

The research engine built `Teacher`/`Student` from the YAML's `teacher`/`student` section
(backbone friendly names, fusion_dim, fusion_heads, fusion_layers, dropout) and its one
`fusion` section (type + params, shared by both roles); class counts came from the dataset
named in `data.type`. The `.pth` carries none of this, so the YAML is required to rebuild it.
Where the research code fell back silently (unknown fusion → simple, unknown label → class
0) we refuse with the valid choices named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.contract.tasks import TASK_SETS, task_set
from models.backbones import TEXT_PRESETS, VISION_PRESETS
from models.config import ModelConfig
from models.fusion import KNOWN_FUSION_PARAMS

ROLES = ("teacher", "student")
# Research constructor defaults (docs/spec.md §2.1) for keys a section may leave out.
DEFAULT_FUSION_LAYERS = {"teacher": 2, "student": 1}
DEFAULT_FUSION_HEADS = 8
DEFAULT_DROPOUT = 0.1
DEFAULT_FUSION_TYPE = "simple"  # the research default; refused below with an explanation


class ResearchConfigError(ValueError):
    """The research YAML cannot describe a model this product can build."""


@dataclass(frozen=True)
class ResearchRun:
    """What one role of a research run needs to be rebuilt and labelled."""

    role: str
    task_set: str
    model_config: ModelConfig
    text_backbone: str  # friendly name: decides the tokenizer
    raw: dict[str, Any]  # the parsed YAML, recorded in the manifest
    file_name: str
    sha256: str
    ignored_fusion_keys: tuple[str, ...]  # fusion-section keys the research factory ignored


def _backbone(section: Mapping[str, Any], key: str, role: str) -> str:
    presets = VISION_PRESETS if key == "vision" else TEXT_PRESETS
    name = section.get(key)
    if not isinstance(name, str) or not name:
        raise ResearchConfigError(f"'{role}.{key}' must name a backbone (got {name!r})")
    if name not in presets:
        raise ResearchConfigError(
            f"unknown {key} backbone {name!r} in '{role}.{key}'; supported: {', '.join(presets)}"
        )
    return name


def _task_set(raw: Mapping[str, Any], override: str | None) -> str:
    data = raw.get("data")
    named = data.get("type") if isinstance(data, Mapping) else None
    if named is not None and named not in TASK_SETS:
        raise ResearchConfigError(
            f"'data.type' is {named!r}; supported datasets: {', '.join(TASK_SETS)}"
        )
    if override is not None:
        task_set(override)  # KeyError lists the valid names
        if named is not None and named != override:
            raise ResearchConfigError(
                f"--task-set {override!r} contradicts the YAML's data.type {named!r}"
            )
        return override
    if named is None:
        raise ResearchConfigError(
            "the YAML does not say which dataset the run used ('data.type' is absent); "
            f"pass --task-set ({' or '.join(TASK_SETS)})"
        )
    return str(named)


def _int(section: Mapping[str, Any], key: str, role: str, default: int | None) -> int:
    value = section.get(key, default)
    if value is None:
        raise ResearchConfigError(f"'{role}.{key}' is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResearchConfigError(f"'{role}.{key}' must be an integer, got {value!r}")
    return value


def parse_research_config(
    raw: Mapping[str, Any], role: str, task_set_name: str | None = None
) -> tuple[ModelConfig, str, str, tuple[str, ...]]:
    """(model config, task set, text backbone name, ignored fusion keys) for `role`."""
    if role not in ROLES:
        raise ResearchConfigError(f"role must be one of {ROLES}, got {role!r}")
    section = raw.get(role)
    if not isinstance(section, Mapping):
        raise ResearchConfigError(f"the YAML has no '{role}' section")
    arch = section.get("arch", "standard")
    if arch != "standard":
        raise ResearchConfigError(
            f"'{role}.arch: {arch}' (StudentCustom) is not supported: only the standard "
            "Teacher/Student layout (HF backbones + projections + fusion + heads) imports"
        )
    name = _task_set(raw, task_set_name)
    spec = task_set(name)
    fusion = raw.get("fusion") or {}
    if not isinstance(fusion, Mapping):
        raise ResearchConfigError("'fusion' must be a mapping")
    params = {k: v for k, v in fusion.items() if k in KNOWN_FUSION_PARAMS and k != "type"}
    ignored = tuple(sorted(k for k in fusion if k not in KNOWN_FUSION_PARAMS))
    try:
        config = ModelConfig(
            vision=_backbone(section, "vision", role),
            text=_backbone(section, "text", role),
            fusion_dim=_int(section, "fusion_dim", role, None),
            fusion_type=str(fusion.get("type", DEFAULT_FUSION_TYPE)),
            fusion_heads=_int(section, "fusion_heads", role, DEFAULT_FUSION_HEADS),
            fusion_layers=_int(section, "fusion_layers", role, DEFAULT_FUSION_LAYERS[role]),
            dropout=float(section.get("dropout", DEFAULT_DROPOUT)),
            fusion_params=params,
            num_classes=(len(spec.tasks[0][1]), len(spec.tasks[1][1])),
        )
    except ValueError as exc:
        if isinstance(exc, ResearchConfigError):
            raise
        raise ResearchConfigError(f"'{role}' / 'fusion' sections: {exc}") from None
    return config, name, str(section["text"]), ignored


def read_research_config(
    path: str | Path, role: str, task_set_name: str | None = None
) -> ResearchRun:
    """Read and validate the research YAML at `path` for `role`."""
    path = Path(path)
    if not path.is_file():
        raise ResearchConfigError(f"research config not found: {path}")
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ResearchConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ResearchConfigError(f"{path}: expected a mapping at the top level")
    config, name, text, ignored = parse_research_config(raw, role, task_set_name)
    return ResearchRun(
        role=role,
        task_set=name,
        model_config=config,
        text_backbone=text,
        raw=raw,
        file_name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        ignored_fusion_keys=ignored,
    )
