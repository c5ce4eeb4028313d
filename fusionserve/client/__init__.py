"""Python client for a fusionserve server.

    from fusionserve.client import Client
    with Client("http://127.0.0.1:8000", api_key=None) as client:
        result = client.predict("scan.png", "Axial CT of the chest.", model="medpix")
        result.predictions["modality"].label, result.predictions["modality"].probability

`AsyncClient` has the same methods as coroutines. Errors are `FusionServeError`s with a stable
`code` (the server's error code for `ApiError`). 429 and 503 answers and refused connections are
retried with exponential backoff, honouring `Retry-After` (`RetryPolicy`).
"""

from fusionserve.client.aio import AsyncClient
from fusionserve.client.errors import (
    ApiError,
    ConnectionFailed,
    FusionServeError,
    InvalidInput,
    RequestTimedOut,
)
from fusionserve.client.images import ImageInput
from fusionserve.client.results import (
    BatchItem,
    DomainSide,
    ModelInfo,
    ModelRef,
    Prediction,
    TaskPrediction,
)
from fusionserve.client.retry import NO_RETRY, RetryPolicy
from fusionserve.client.sync import Client

__all__ = [
    "NO_RETRY",
    "ApiError",
    "AsyncClient",
    "BatchItem",
    "Client",
    "ConnectionFailed",
    "DomainSide",
    "FusionServeError",
    "ImageInput",
    "InvalidInput",
    "ModelInfo",
    "ModelRef",
    "Prediction",
    "RequestTimedOut",
    "RetryPolicy",
    "TaskPrediction",
]
