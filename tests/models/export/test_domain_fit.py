"""Fitting the domain check on data whose answer is known: two Gaussian classes in 40 dimensions
(train and dev drawn alike) and a shifted cloud. Dev is flagged at the stated rate at most, the
shifted cloud almost always; the stored (float32) file reproduces the fitted distances and
lists the parts it has; a width above MAX_RANK keeps a low-rank basis that still separates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.contract.domain import PART_KEYS, DomainModel, part_output
from models.export.domain_fit import (
    FALSE_FLAG_RATE,
    _between_cases,
    fit_domain,
    fit_part,
    fit_thresholds,
)


def _cloud(
    rng: np.random.Generator, n: int, width: int, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, anisotropic (sd 3 .. 0.05 along rotated axes, as real features are);
    `shift` moves the cloud by that much along every coordinate, alternating in sign (away
    from both class means, which differ along the all-ones direction)."""
    labels = rng.integers(0, 2, n)
    mixing = np.linalg.qr(np.random.default_rng(7).normal(size=(width, width)))[0]
    scales = np.linspace(3.0, 0.05, width)
    values = (rng.normal(size=(n, width)) * scales) @ mixing.T + labels[:, None] * 4.0
    return values + shift * (-1.0) ** np.arange(width), labels


def _parts(
    rng: np.random.Generator, n: int, shift: float = 0.0
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    values, labels = _cloud(rng, n, 40, shift)
    columns = {"embedding": slice(0, 20), "input_stats": slice(20, 32), "early": slice(32, 40)}
    return {part_output(s, p): values[:, columns[p]] for s, p in PART_KEYS}, labels


def test_dev_flagged_at_the_rate_and_a_shifted_cloud_nearly_always(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, labels = _parts(rng, 3000)
    dev, _ = _parts(rng, 400)
    model, per_part = fit_domain(train, labels, dev)
    assert 0 < per_part <= FALSE_FLAG_RATE
    assert list(model.parts) == list(PART_KEYS)
    model.save(tmp_path / "domain.npz")
    stored = DomainModel.load(tmp_path / "domain.npz")
    dev_scores = stored.scores(dev)
    flagged = (dev_scores["image"] > 1) | (dev_scores["text"] > 1)
    assert 0.02 <= flagged.mean() <= FALSE_FLAG_RATE
    far, _ = _parts(rng, 400, shift=3.0)
    assert (stored.scores(far)["image"] > 1).mean() >= 0.99


def test_stored_model_scores_as_the_fitted_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train, labels = _parts(rng, 800)
    dev, _ = _parts(rng, 200)
    model, _ = fit_domain(train, labels, dev)
    model.save(tmp_path / "d.npz")
    stored = DomainModel.load(tmp_path / "d.npz")
    for side, scores in model.scores(dev).items():
        np.testing.assert_allclose(stored.scores(dev)[side], scores, rtol=1e-3)
    # the served (one pass for all parts) form = the per-part reference form
    direct = np.max(
        [
            m.distances(dev[part_output(*key)]) / m.threshold
            for key, m in stored.parts.items()
            if key[0] == "image"
        ],
        axis=0,
    )
    np.testing.assert_allclose(stored.scores(dev)["image"], direct, rtol=1e-5)


def test_a_file_without_the_early_part_fits_and_loads(tmp_path: Path) -> None:
    """Backbones without a known early block (the teachers) output no `early_image`."""
    rng = np.random.default_rng(4)
    train, labels = _parts(rng, 600)
    dev, _ = _parts(rng, 200)
    del train["early_image"], dev["early_image"]
    model, _ = fit_domain(train, labels, dev)
    model.save(tmp_path / "d.npz")
    stored = DomainModel.load(tmp_path / "d.npz")
    assert ("image", "early") not in stored.parts and len(stored.parts) == 4
    assert "early_image" not in stored.widths()


def test_near_ties_stay_on_one_side_of_the_threshold() -> None:
    """Repeated texts give one distance up to float rounding: the threshold never falls
    between such values, whatever the level picks."""
    group = 3.0 * (1.0 + np.array([0.0, 1e-7, 2e-7, 3e-7]))
    distances = np.concatenate([np.linspace(0.5, 2.9, 96), group])
    for level in (0.9, 0.96, 0.97, 0.99):
        threshold = _between_cases(distances, level)
        assert (group > threshold).all() or (group < threshold * (1 - 1e-5)).all()


def test_threshold_never_flags_the_dev_case_it_sits_on() -> None:
    distances = {("image", "embedding"): np.linspace(1.0, 2.0, 101, dtype=np.float64) + 1e-9}
    thresholds, _ = fit_thresholds(distances, 0.05)
    flagged = distances[("image", "embedding")] > np.float32(thresholds[("image", "embedding")])
    assert flagged.sum() == 5  # exactly the top 5 %, after float32 storage


def test_a_wide_embedding_keeps_a_low_rank_basis_that_still_separates() -> None:
    rng = np.random.default_rng(2)
    train, labels = _cloud(rng, 500, 60)
    part = fit_part(train, labels, max_rank=16)
    assert part.basis.shape == (60, 16)
    dev, _ = _cloud(rng, 200, 60)
    far, _ = _cloud(rng, 200, 60, shift=3.0)
    assert np.median(part.distances(far)) > 2 * np.median(part.distances(dev))


@pytest.mark.parametrize("labels", [None, "classes"])
def test_class_means_or_one_mean(labels: str | None) -> None:
    rng = np.random.default_rng(3)
    train, truth = _cloud(rng, 400, 10)
    part = fit_part(train, truth if labels else None)
    assert part.means.shape == ((2, 10) if labels else (1, 10))
