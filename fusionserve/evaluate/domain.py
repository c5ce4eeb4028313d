"""How well the bundle's domain check separates its own inputs from others, through the same
predictor as the scores: flag rates on the own split (fused cases), on the other task set's
split (its images with its texts, `--ood-data`), and on the fixed synthetic images (blank,
black, noise, text screenshots, sent with an empty text), and the AUROC of each side's score
for own versus other cases. A case is flagged on a side when its score is above 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionserve.evaluate.cases import dataset_kind
from fusionserve.evaluate.errors import EvaluateError, ItemFailed
from fusionserve.evaluate.outputs import ItemOutput, Predictor
from models.data import DataError, load_samples
from models.data.synthetic import synthetic_images

SIDES = ("image", "text")


def _scores(outputs: Sequence[ItemOutput]) -> dict[str, np.ndarray]:
    if any(o.domain_scores is None for o in outputs):
        raise EvaluateError("some answers carry no domain scores")
    return {
        side: np.asarray([o.domain_scores[side] for o in outputs if o.domain_scores is not None])
        for side in SIDES
    }


def flag_rates(outputs: Sequence[ItemOutput]) -> dict[str, Any]:
    """Fraction flagged per side and on either side."""
    scores = _scores(outputs)
    flags = {side: s > 1.0 for side, s in scores.items()}
    either = flags["image"] | flags["text"]
    rates = {side: float(f.mean()) for side, f in flags.items()}
    return {"either": float(either.mean()), **rates, "cases": len(outputs)}


def auroc(own: np.ndarray, other: np.ndarray) -> float:
    """P(score of a random other case > score of a random own case), ties counted half."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(own)), np.ones(len(other))]
    return float(roc_auc_score(truth, np.r_[own, other]))


def _predict(
    predictor: Predictor, items: Sequence[tuple[bytes, str]], names: Sequence[str], batch: int
) -> list[ItemOutput]:
    outputs: list[ItemOutput] = []
    for start in range(0, len(items), batch):
        try:
            outputs += predictor.predict(items[start : start + batch])
        except ItemFailed as exc:
            raise EvaluateError(f"domain check, case {names[start + exc.index]}: {exc}") from None
    return outputs


def _synthetic(predictor: Predictor, batch: int) -> dict[str, Any]:
    images = synthetic_images()
    outputs = _predict(predictor, [(i.png, "") for i in images], [i.name for i in images], batch)
    flagged = _scores(outputs)["image"] > 1.0
    kinds = np.asarray([i.kind for i in images])
    by_kind = {k: float(flagged[kinds == k].mean()) for k in dict.fromkeys(kinds.tolist())}
    return {"image": float(flagged.mean()), "by_kind": by_kind, "cases": len(images)}


def _other(
    predictor: Predictor, root: Path, split: str, batch: int, limit: int | None
) -> tuple[dict[str, Any], list[ItemOutput]]:
    kind = dataset_kind(root)
    try:
        samples = load_samples(kind, root, split)[:limit]
    except DataError as exc:
        raise EvaluateError(f"--ood-data: {exc}") from None
    items = [(s.image_path.read_bytes(), s.text) for s in samples]
    outputs = _predict(predictor, items, [s.image_path.name for s in samples], batch)
    return {"dataset": root.resolve().name, "split": split, **flag_rates(outputs)}, outputs


def domain_report(
    predictor: Predictor,
    own: Sequence[ItemOutput],
    ood_data: Path | None,
    split: str,
    batch: int,
    limit: int | None = None,
) -> dict[str, Any] | None:
    """The rates and AUROCs; None when the bundle has no domain check."""
    if not own or own[0].domain_scores is None:
        return None
    report: dict[str, Any] = {
        "own": flag_rates(own),
        "synthetic_images": _synthetic(predictor, batch),
    }
    if ood_data is not None:
        report["other_task_set"], other = _other(predictor, ood_data, split, batch, limit)
        own_scores, other_scores = _scores(own), _scores(other)
        report["auroc"] = {side: auroc(own_scores[side], other_scores[side]) for side in SIDES}
    return report
