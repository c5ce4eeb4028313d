"""Scores against hand computations: confusion matrix, per-class F1, ECE and its bins."""

from __future__ import annotations

import numpy as np
import pytest

from app.contract.manifest import Manifest
from fusionserve.evaluate.outputs import ItemOutput
from fusionserve.evaluate.scoring import condition_scores, task_scores
from tests.fusionserve.evaluate.conftest import EXPORTED

Y_TRUE = np.array([0, 0, 1, 1, 2])
PROBS = np.array(
    [
        [0.70, 0.20, 0.10],  # right, confidence .70
        [0.20, 0.65, 0.15],  # wrong, .65
        [0.10, 0.80, 0.10],  # right, .80
        [0.30, 0.30, 0.40],  # wrong, .40
        [0.05, 0.05, 0.90],  # right, .90
    ]
)


def test_task_scores_match_a_hand_computation() -> None:
    scores = task_scores(Y_TRUE, PROBS, ["a", "b", "c"])
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert scores["accuracy"] == pytest.approx(0.6)
    f1 = {label: v["f1"] for label, v in scores["per_class"].items()}
    assert f1 == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 2 / 3})
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert scores["per_class"]["a"]["support"] == 2
    # Every row sits alone in its 1/15-wide bin: ECE = mean |correct − confidence|.
    assert scores["ece"] == pytest.approx((0.30 + 0.65 + 0.20 + 0.40 + 0.10) / 5)
    filled = [b for b in scores["reliability"] if b["count"]]
    assert len(scores["reliability"]) == 15 and len(filled) == 5
    assert [b["accuracy"] for b in filled] == [0.0, 0.0, 1.0, 1.0, 1.0]  # by confidence
    assert filled[2]["confidence"] == pytest.approx(0.70)
    assert filled[2]["lower"] < 0.70 <= filled[2]["upper"]


LOCATIONS = ["Abdomen", "Head", "Reproductive and Urinary System", "Thorax", "Spine and Muscles"]


def _output(modality: list[float], location: list[float], image_weight: float) -> ItemOutput:
    return ItemOutput(
        probabilities={
            "modality": dict(zip(["CT", "MR"], modality, strict=True)),
            "location": dict(zip(LOCATIONS, location, strict=True)),
        },
        modality_weights={"image": image_weight, "text": 1 - image_weight},
    )


def test_condition_scores_read_answers_by_label_name() -> None:
    manifest = Manifest.load(EXPORTED / "medpix-student")
    outputs = [
        _output([0.9, 0.1], [0.1, 0.6, 0.1, 0.1, 0.1], 0.2),
        _output([0.3, 0.7], [0.1, 0.1, 0.1, 0.6, 0.1], 0.4),
    ]
    truth = {"modality": np.array([0, 0]), "location": np.array([1, 3])}
    scores = condition_scores(manifest, truth, outputs)
    assert scores["modality"]["confusion_matrix"] == [[1, 1], [0, 0]]
    assert scores["location"]["accuracy"] == 1.0
    assert scores["modality_weights"] == pytest.approx({"image": 0.3, "text": 0.7})
    outputs[1].probabilities["modality"] = {"CT": 0.5, "XR": 0.5}
    with pytest.raises(ValueError, match="answer labels"):
        condition_scores(manifest, truth, outputs)
