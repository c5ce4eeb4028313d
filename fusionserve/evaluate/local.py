"""In-process path: the bundle loaded by the service's own registry and answered by its
`InferenceService` (checksums, warm-up, preprocessing pool, dynamic batcher, postprocessing),
so the scores are the service's without an HTTP server in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from app.contract.image import ImageDecodeError
from app.errors import ServiceError, as_service_error
from app.inference import InferenceService, PredictionResult
from app.registry import ModelRegistry
from app.settings import Settings
from fusionserve.evaluate.errors import EvaluateError, ItemFailed
from fusionserve.evaluate.outputs import ItemOutput


def item_output(result: PredictionResult) -> ItemOutput:
    prediction = result.prediction
    return ItemOutput(
        probabilities={name: dict(p.probabilities) for name, p in prediction.tasks.items()},
        modality_weights=prediction.modality_weights,
        domain_scores=None
        if prediction.domain is None
        else {side: d.score for side, d in prediction.domain.items()},
    )


class LocalPredictor:
    """One bundle served in this process; `predict` runs a chunk of items concurrently."""

    def __init__(self, bundle: Path, precision: str = "fp32", threads: int = 1) -> None:
        bundle = bundle.resolve()
        self.name = bundle.name
        settings = Settings(
            bundle_dir=bundle.parent,
            models=[bundle.name],
            precision=precision,  # type: ignore[arg-type]  # argparse restricts the choices
            intra_op_threads=threads,
            inter_op_threads=1,
        )
        self._runner = asyncio.Runner()
        self._service = InferenceService(settings, ModelRegistry(settings))
        self._runner.run(self._service.registry.load_all())
        served = self._service.registry.models[self.name]
        if served.active is None or not served.ready:
            reason = served.status_reason
            self.close()
            raise EvaluateError(f"bundle {bundle} cannot be served: {reason}")
        onnx = served.active.bundle.onnx
        self.source = {"via": "in-process", "precision": onnx.precision, "provider": onnx.provider}

    def predict(self, items: Sequence[tuple[bytes, str]]) -> list[ItemOutput]:
        return self._runner.run(self._predict(items))

    async def _predict(self, items: Sequence[tuple[bytes, str]]) -> list[ItemOutput]:
        calls = [self._service.predict(image, text, model=self.name) for image, text in items]
        results = await asyncio.gather(*calls, return_exceptions=True)
        outputs = []
        for index, result in enumerate(results):
            if isinstance(result, ServiceError | ImageDecodeError):
                err = as_service_error(result)
                raise ItemFailed(index, err.code, err.message)
            if isinstance(result, BaseException):
                raise result
            outputs.append(item_output(result))
        return outputs

    def close(self) -> None:
        try:
            self._runner.run(self._service.close())
        finally:
            self._runner.close()
