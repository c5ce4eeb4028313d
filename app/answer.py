"""A prediction's answer as a plain dict and as JSON bytes, built once from the prediction.

Why not a pydantic model on /predict: FastAPI validates a returned model against the route's
`response_model` and serialises it through pydantic again — about 0.1 ms of event-loop time per
request for data the service itself just built (issue 26's profile). /predict sends
`answer_json` as is; its `response_model` still documents the shape, and /predict/batch
validates the same dict into `PredictResponse` (`routes.predict.to_response`), so the two
cannot drift. Fields that are None are left out, as `response_model_exclude_none` did.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.inference import PredictionResult
from app.postprocess import Prediction


def answer_dict(result: PredictionResult) -> dict[str, Any]:
    manifest = result.model.manifest
    prediction = result.prediction
    out: dict[str, Any] = {
        "model": {
            "name": result.model.name,
            "task_set": manifest.task_set,
            "role": manifest.role,
            "fusion": manifest.fusion,
            "version": manifest.version,
        },
        "predictions": {
            name: {
                "label": p.label,
                "probability": p.probability,
                "probabilities": p.probabilities,
                "low_confidence": p.low_confidence,
            }
            for name, p in prediction.tasks.items()
        },
    }
    if prediction.modality_weights:
        weights = prediction.modality_weights
        out["modality_weights"] = {"image": weights["image"], "text": weights["text"]}
    if (domain := _domain(prediction)) is not None:
        out["domain"] = domain
    out["timing_ms"] = result.timings.as_ms()
    return out


def _domain(prediction: Prediction) -> dict[str, Any] | None:
    if prediction.domain is None:
        return None
    return {
        side: {"in_domain": d.in_domain, "score": round(d.score, 4)}
        for side, d in prediction.domain.items()
    }


def answer_json(result: PredictionResult) -> bytes:
    """Compact UTF-8 JSON, as FastAPI's JSONResponse writes it. orjson: the standard encoder
    took 5 % of the event loop's time under load (issue 26). orjson writes NaN as null where
    json refused it; an answer never holds one (`run_guard.non_finite_outputs` fails the item)."""
    return orjson.dumps(answer_dict(result))
