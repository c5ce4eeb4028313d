"""Score every case under every condition with one predictor, behind a progress bar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from app.contract.manifest import Manifest
from fusionserve.evaluate.cases import Case
from fusionserve.evaluate.conditions import CONDITIONS, blank_image, inputs_for
from fusionserve.evaluate.errors import EvaluateError, ItemFailed
from fusionserve.evaluate.outputs import ItemOutput, Predictor
from fusionserve.evaluate.scoring import condition_scores


def predict_condition(
    predictor: Predictor,
    condition: str,
    cases: Sequence[Case],
    blank: bytes,
    batch_size: int,
    bar: tqdm[Any],
) -> list[ItemOutput]:
    outputs: list[ItemOutput] = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        try:
            outputs += predictor.predict([inputs_for(condition, c, blank) for c in chunk])
        except ItemFailed as exc:
            raise EvaluateError(f"{condition}, case {chunk[exc.index].name}: {exc}") from None
        bar.update(len(chunk))
    return outputs


def score_all(
    predictor: Predictor,
    manifest: Manifest,
    cases: Sequence[Case],
    batch_size: int = 32,
    progress: bool = True,
    keep: dict[str, list[ItemOutput]] | None = None,
) -> dict[str, Any]:
    """{condition: condition_scores} for fused, image only and text only; each condition's
    answers also go into `keep` when given (the domain report reads the fused ones)."""
    blank = blank_image(manifest.preprocessing.image_size)
    truth = {
        spec.name: np.asarray([c.labels[i] for c in cases], dtype=np.int64)
        for i, spec in enumerate(manifest.tasks)
    }
    results: dict[str, Any] = {}
    total = len(cases) * len(CONDITIONS)
    with tqdm(total=total, desc=manifest.name, unit="item", disable=not progress) as bar:
        for condition in CONDITIONS:
            bar.set_postfix_str(condition)
            outputs = predict_condition(predictor, condition, cases, blank, batch_size, bar)
            results[condition] = condition_scores(manifest, truth, outputs)
            if keep is not None:
                keep[condition] = outputs
    return results
