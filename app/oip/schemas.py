"""The JSON shapes of OIP v2 (REST): the inference request we accept, the error we answer.

Strict types, so a request that breaks the documented schema is refused rather than coerced.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class TensorInput(BaseModel):
    """One input tensor; `data` is absent when its bytes follow the JSON (binary extension)."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    shape: list[StrictInt]
    datatype: StrictStr
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferRequest(BaseModel):
    """`$inference_request`; unknown top-level keys (e.g. kserve's `model_name`) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: StrictStr | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[TensorInput]
    outputs: list[RequestedOutput] | None = None


class OipError(BaseModel):
    """`$inference_error_response`: the stable code travels in the X-Error-Code header."""

    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """`parameters` holds strings only (the protocol's parameter values are scalars): lists such
    as a task's labels are JSON-encoded."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool
