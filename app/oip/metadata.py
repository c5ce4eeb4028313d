"""Server and model metadata as OIP v2 states them; the version is the bundle's (sha256 prefix)."""

from __future__ import annotations

import json

from app.errors import ModelNotReady
from app.oip.errors import UnknownVersion
from app.oip.outputs import declared_outputs
from app.oip.request import INPUT_NAMES
from app.oip.schemas import ModelMetadata, TensorMetadata
from app.registry import ModelRegistry
from app.served_model import ServedModel

PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ["binary_tensor_data", "model_repository"]


def find_model(registry: ModelRegistry, name: str, version: str | None) -> ServedModel:
    """A bundle by name or task set (its student); a version, when given, must be the bundle's."""
    served = registry.lookup(name)
    if version is not None:
        actual = served.manifest.version if served.manifest is not None else None
        if version != actual:
            raise UnknownVersion(
                f"model {served.name!r} has no version {version!r}; it serves {actual!r}"
            )
    return served


def model_metadata(served: ServedModel) -> ModelMetadata:
    manifest = served.manifest
    if manifest is None:
        raise ModelNotReady(f"model {served.name!r} is not ready: {served.status_reason}")
    parameters = {
        "task_set": manifest.task_set,
        "role": manifest.role,
        "fusion": manifest.fusion,
        "tasks": json.dumps([t.name for t in manifest.tasks]),
    }
    parameters |= {f"labels_{t.name}": json.dumps(t.labels) for t in manifest.tasks}
    return ModelMetadata(
        name=served.name,
        versions=[manifest.version],
        platform=PLATFORM,
        inputs=[TensorMetadata(name=n, datatype="BYTES", shape=[-1]) for n in INPUT_NAMES],
        outputs=[
            TensorMetadata(name=n, datatype=d, shape=s) for n, d, s in declared_outputs(manifest)
        ],
        parameters=parameters,
    )
