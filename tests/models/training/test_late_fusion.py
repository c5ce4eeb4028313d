"""`late_fusion`: a trained network plus a bag-of-words text model, weights chosen per task on
dev, written as one checkpoint that `fusionserve export` turns into an ordinary bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from app.contract.manifest import Manifest
from fusionserve.cli import main as cli_main
from models.checkpoint import load_servable
from models.late_fusion import LateFusionModel
from models.training.bow_fit import full_coefficients
from models.training.config import ConfigError, TrainConfig
from models.training.late_fusion import NETWORK_DIR, train_late_fusion
from models.training.run import CHECKPOINT_NAME, METRICS_NAME
from tests.models.training.test_end_to_end import _raw

LIMIT = 48


@pytest.fixture(scope="module")
def fused_dir(medpix_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("late")
    raw = _raw("student", medpix_root, tmp, late_fusion={"folds": 2, "text_c": [1.0, 4.0]})
    raw["optim"]["epochs"] = 1
    train_late_fusion(TrainConfig.from_dict(raw), limit=LIMIT, progress=False)
    return tmp / "student"


def test_network_then_late_fusion_with_weights_from_the_variants(fused_dir: Path) -> None:
    assert (fused_dir / NETWORK_DIR / CHECKPOINT_NAME).is_file()
    model, _cfg, meta = load_servable(fused_dir / CHECKPOINT_NAME)
    assert isinstance(model, LateFusionModel)
    recipe = TrainConfig.from_dict(meta.training_config).late_fusion
    assert recipe is not None
    variants = [list(v) for v in recipe.variants]
    assert all(row in variants for row in model.task_weights.tolist())
    assert model.bow.empty_counts.sum() > 0 and model.bow.idf.min() >= 1.0
    metrics = json.loads((fused_dir / METRICS_NAME).read_text(encoding="utf-8"))
    fit = metrics["late_fusion"]
    assert set(fit["weights"]) == {"modality", "location"}
    for task in ("modality", "location"):
        assert 0.0 <= fit["weight_choice"][task]["cv_macro_f1_of_choice"] <= 1.0
        assert set(fit["text_model"][task]["cv_macro_f1_by_c"]) == {"1.0", "4.0"}
    for view in ("dev", "dev_image_only", "dev_text_only", "network"):
        assert view in metrics


def test_export_serves_it_as_one_graph(fused_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    checkpoint = str(fused_dir / CHECKPOINT_NAME)
    rc = cli_main(["export", "--checkpoint", checkpoint, "--out", str(out), "--threads", "1"])
    assert rc == 0  # export checks ONNX-vs-torch parity and the self-test itself
    manifest = Manifest.load(out)
    assert max(manifest.metrics["parity"]["max_abs_diff"].values()) < 1e-4
    assert (manifest.training_config or {})["late_fusion"]["folds"] == 2


def test_two_class_and_absent_classes_become_full_softmax_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    y = np.where(x[:, 0] > 0, 3, 1)  # classes 1 and 3 of 4
    model = LogisticRegression().fit(x, y)
    weight, bias = full_coefficients(model, 4)
    logits = x @ weight.T + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs[:, [1, 3]], model.predict_proba(x), atol=1e-9)
    assert probs[:, [0, 2]].max() < 1e-9


def test_late_fusion_and_ensemble_exclude_each_other(medpix_root: Path, tmp_path: Path) -> None:
    raw = _raw("student", medpix_root, tmp_path, late_fusion={}, ensemble={"seeds": [1, 2]})
    with pytest.raises(ConfigError, match="late_fusion"):
        TrainConfig.from_dict(raw)
