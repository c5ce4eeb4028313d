"""Per-model serving settings: one bundle's batching, precision, threads and providers.

A 1 M-parameter student and a 25 M-parameter teacher want different batch sizes and threads,
so each bundle gets its own `ModelSettings`, resolved once when it loads, in the spirit of
MLServer's model-settings.json and Triton's model config. Precedence, highest first:

1. `FUSIONSERVE_MODEL__<NAME>__<SETTING>` (NAME: the bundle name upper-cased, '-' → '_'),
2. `<bundle folder>/serving.json` (optional; a JSON object of settings),
3. the global `FUSIONSERVE_<SETTING>` (app.settings).

A wrong key or value fails that bundle only, with the file or variable and key in the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.bundle_error import BundleError
from app.contract.session import GraphOptimization
from app.settings import Settings, split_commas

SERVING_FILE = "serving.json"
ENV_PREFIX = "FUSIONSERVE_MODEL__"


class ModelSettings(BaseModel):
    """How one bundle is served; every field defaults to the global setting of the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_size: int = Field(ge=0)  # 0 = auto: 4 on a CPU, 32 on a GPU
    max_delay_ms: float = Field(ge=0.0)
    queue_size: int = Field(ge=1)
    precision: Literal["fp32", "int8"]
    providers: list[str]
    intra_op_threads: int = Field(ge=0)  # 0 = auto: half the cores, at least 1
    inter_op_threads: int = Field(ge=0)
    concurrent_runs: int = Field(ge=0)  # 0 = auto: 2 on CPU with auto intra, else 1
    graph_optimization: GraphOptimization
    io_binding: Literal["auto", "on", "off"]

    @field_validator("providers", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return split_commas(value)

    @property
    def max_delay_s(self) -> float:
        return self.max_delay_ms / 1000.0


class ModelSettingsError(BundleError):
    """A settings file or variable for one bundle is wrong; the message says where."""


def env_name(bundle: str) -> str:
    """The NAME part of a bundle's variables: `medpix-student` → `MEDPIX_STUDENT`."""
    return bundle.upper().replace("-", "_")


def resolve_model_settings(
    bundle_dir: Path, settings: Settings, environ: Mapping[str, str] | None = None
) -> ModelSettings:
    """The effective settings for the bundle in `bundle_dir` (named after its folder)."""
    values: dict[str, Any] = {key: getattr(settings, key) for key in ModelSettings.model_fields}
    sources = dict.fromkeys(values, "the global default")
    path = bundle_dir / SERVING_FILE
    for key, value in _from_file(path).items():
        values[key], sources[key] = value, f"{path}: {key}"
    prefix = f"{ENV_PREFIX}{env_name(bundle_dir.name)}__"
    for key, (variable, value) in _from_env(prefix, environ).items():
        values[key], sources[key] = value, variable
    try:
        return ModelSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = sources.get(str(first["loc"][0]), str(first["loc"][0]))
        raise ModelSettingsError(f"serving settings: {where}: {first['msg']}") from None


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSettingsError(f"serving settings: {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelSettingsError(f"serving settings: {path} must hold a JSON object")
    for key in data:
        _check_known(key, f"{path}: {key}")
    return data


def _from_env(prefix: str, environ: Mapping[str, str] | None) -> dict[str, tuple[str, str]]:
    """setting → (variable, value) for every variable with this bundle's prefix."""
    found = {}
    for variable, value in (os.environ if environ is None else environ).items():
        if variable.upper().startswith(prefix):
            key = variable[len(prefix) :].lower()
            _check_known(key, variable)
            found[key] = (variable, value)
    return found


def _check_known(key: str, where: str) -> None:
    if key not in ModelSettings.model_fields:
        valid = ", ".join(ModelSettings.model_fields)
        raise ModelSettingsError(f"serving settings: {where}: unknown setting; valid: {valid}")
