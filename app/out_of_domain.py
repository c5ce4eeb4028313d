"""Refusing out-of-domain inputs (FUSIONSERVE_REFUSE_OUT_OF_DOMAIN): 422 `out_of_domain`.

Off by default: every answer already carries the per-side flags and sets `low_confidence`, and a
client may prefer a flagged answer to none. A deployment whose callers cannot be trusted to read
the flags (a pipeline writing labels straight into a record) turns refusal on.
"""

from __future__ import annotations

from app.errors import ServiceError
from app.postprocess import Prediction


class OutOfDomain(ServiceError):
    """The image or the text does not look like what the model was trained on."""

    status = 422
    code = "out_of_domain"


def refuse_out_of_domain(model: str, prediction: Prediction) -> None:
    """Raise OutOfDomain naming the flagged sides and their scores (never the input)."""
    sides = prediction.out_of_domain
    if not sides or prediction.domain is None:
        return
    scores = ", ".join(f"{side} score {prediction.domain[side].score:.2f}" for side in sides)
    raise OutOfDomain(
        f"model {model!r}: the input is out of its domain ({scores}; above 1 is out of domain)"
    )
