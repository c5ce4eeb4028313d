"""The bundle manifest: everything the service needs to serve a model, and its provenance.

Written by `fusionserve export` (torch side), read by the service and `fusionserve verify`.
Unknown keys are kept (extra="allow") so a newer exporter's additions survive a round trip.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from app.contract.text import EMPTY_TEXT_FALLBACK

MANIFEST_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
SELF_TEST_OPTIONAL_KEYS = ("expected_int8", "tolerance_int8", "onnxruntime_max_abs_diff", "labels")


class Preprocessing(BaseModel):
    """How raw inputs become model inputs; `app.contract.image`/`text` implement it."""

    model_config = ConfigDict(extra="allow")

    image_size: int = 224
    resample: Literal["bilinear"] = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    max_text_length: int = 256
    empty_text: str = EMPTY_TEXT_FALLBACK


class TaskSpec(BaseModel):
    """One classification head: ordered labels, graph output name and calibration."""

    model_config = ConfigDict(extra="allow")

    name: str
    labels: list[str]
    output: str  # graph output holding this head's (calibrated) probabilities
    temperature: float = 1.0  # fitted on dev; already applied inside the graph


class SelfTest(BaseModel):
    """One real dev sample and the outputs the exporter recorded for it, per graph.

    `app.contract.self_test` turns this into the checks export, verify and serve run.
    """

    model_config = ConfigDict(extra="allow")

    image: str  # file inside the bundle
    text: str
    expected: dict[str, list[float]]  # output name → fp32 graph's values (from eager PyTorch)
    tolerance: float = 1e-4
    expected_int8: dict[str, list[float]] | None = None  # the int8 graph's own values
    tolerance_int8: float | None = None
    onnxruntime_max_abs_diff: float | None = None  # fp32 graph vs PyTorch at export
    labels: dict[str, str] | None = None  # the sample's true labels (synthetic probes: none)

    @model_serializer(mode="wrap")
    def _omit_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Optional records absent from a bundle stay absent in its manifest (no nulls)."""
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in SELF_TEST_OPTIONAL_KEYS}


class DomainSpec(BaseModel):
    """The bundle's domain check (`app.contract.domain`): its file, the graph outputs it reads,
    how it was fitted, and the scores its self-test sample must reproduce per graph."""

    model_config = ConfigDict(extra="allow")

    file: str = "domain.npz"
    method: str
    version: int
    outputs: dict[str, int]  # graph output → width (each side's embedding and input stats)
    false_flag_rate: float  # own dev cases flagged on either side, at most (the fitted target)
    fitted_on: dict[str, Any] = Field(default_factory=dict)  # splits, sample counts, labels
    self_test: dict[str, dict[str, float]] = Field(default_factory=dict)  # fp32/int8 → side
    metrics: dict[str, Any] = Field(default_factory=dict)  # flag rates measured at export
    # True: the graph itself outputs the per-side scores (`domain_score_<side>`, f64[B], from
    # this file's values: `models.export.domain_graph`); serving fetches those, not the parts
    scores_in_graph: bool = False


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format_version: int = MANIFEST_FORMAT_VERSION
    name: str
    task_set: Literal["medpix", "wound"]
    role: Literal["teacher", "student"]
    fusion: str
    backbones: dict[str, Any]
    preprocessing: Preprocessing
    tasks: list[TaskSpec]
    modality_weights_output: str | None = None  # f32[B,2] (image, text) where the fusion has it
    files: dict[str, str] = Field(default_factory=dict)  # file name → sha256 hex
    parameter_count: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    training_config: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""
    git_commit: str = ""
    self_test: SelfTest | None = None
    int8: dict[str, Any] | None = None  # present when model.int8.onnx ships
    domain: DomainSpec | None = None  # the fitted domain check (None: none was fitted)

    @property
    def version(self) -> str:
        """Short content version: the sha256 prefix of the fp32 graph."""
        return self.files.get(MODEL_FILE, "")[:12]

    @property
    def int8_file(self) -> str | None:
        """The int8 graph's file name, when the bundle ships one."""
        return None if self.int8 is None else str(self.int8.get("file", INT8_MODEL_FILE))

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(f"bundle {self.name!r} has no task {name!r}")

    @classmethod
    def load(cls, bundle_dir: str | Path) -> Manifest:
        path = Path(bundle_dir) / MANIFEST_FILE
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def save(self, bundle_dir: str | Path) -> None:
        path = Path(bundle_dir) / MANIFEST_FILE
        text = json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_mismatches(bundle_dir: str | Path, manifest: Manifest) -> list[str]:
    """Human-readable list of files that are missing or whose sha256 differs."""
    problems: list[str] = []
    for name, expected in sorted(manifest.files.items()):
        path = Path(bundle_dir) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif (actual := sha256_file(path)) != expected:
            problems.append(f"{name}: sha256 {actual[:12]}… != manifest {expected[:12]}…")
    return problems
