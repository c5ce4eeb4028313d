"""The run guard's defaults: a deadline from the bundle's own warm-up with a floor, and the NaN/inf
check on one item's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.run_guard import (
    RUN_TIMEOUT_FLOOR_S,
    RUN_TIMEOUT_WARMUP_MULTIPLE,
    SMALL_OUTPUT,
    RunGuard,
    non_finite_outputs,
    run_timeout_s,
)
from tests.app.helpers import tiny_settings


def test_the_deadline_follows_warm_up_above_a_floor(tmp_path: Path) -> None:
    auto = tiny_settings(tmp_path)
    assert run_timeout_s(auto, 0.001) == RUN_TIMEOUT_FLOOR_S
    assert run_timeout_s(auto, 1.0) == RUN_TIMEOUT_WARMUP_MULTIPLE * 1.0
    assert run_timeout_s(tiny_settings(tmp_path, run_timeout_s=0.25), 1.0) == 0.25
    assert RunGuard(timeout_s=4.0).slow_s == 2.0 and RunGuard().slow_s is None


def test_non_finite_outputs_are_named() -> None:
    good = {"probs_modality": np.array([0.2, 0.8], np.float32), "ids": np.array([1, 2])}
    assert non_finite_outputs(good) is None
    bad = dict(good, probs_plane=np.array([np.nan, 1.0]), weights=np.array([np.inf, 0.0]))
    assert non_finite_outputs(bad) == "probs_plane, weights"


def test_large_and_half_precision_outputs_are_checked_too() -> None:
    """Small outputs are checked as Python floats, large ones with numpy: both see NaN/inf."""
    large = np.zeros(SMALL_OUTPUT + 1, np.float32)
    assert non_finite_outputs({"embedding": large}) is None
    large[-1] = -np.inf
    half = np.array([0.5, np.nan], np.float16)
    scalar = np.array(np.nan)
    found = non_finite_outputs({"embedding": large, "half": half, "score": scalar})
    assert found == "embedding, half, score"
