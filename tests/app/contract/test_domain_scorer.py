"""The served form of the domain check (`DomainScorer`: full-rank parts in one block-diagonal
product, low-rank parts each in their own) scores as the per-part reference does, at batch 1
and 8, with and without the early part; a file of another version or with an unknown part is
refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.contract.domain import DomainModel, DomainModelError, PartModel, part_output

CLASSES = 3


def _part(rng: np.random.Generator, width: int, rank: int) -> PartModel:
    basis = np.linalg.qr(rng.normal(size=(width, rank)))[0]
    variances = np.linspace(4.0, 0.5, rank)
    residual = 1.0 / 0.2 if rank < width else 0.0  # the rest variance below the kept ones
    means = rng.normal(size=(CLASSES, width)) * 3 + 10  # far from 0: centring matters
    return PartModel(means, basis, 1.0 / variances - residual, residual, 2.0 + rng.random())


def _model(rng: np.random.Generator, early: bool) -> DomainModel:
    parts = {("image", "embedding"): _part(rng, 300, 16)}
    parts[("image", "input_stats")] = _part(rng, 18, 18)
    if early:
        parts[("image", "early")] = _part(rng, 48, 48)
    parts[("text", "embedding")] = _part(rng, 40, 40)
    parts[("text", "input_stats")] = _part(rng, 4, 4)
    return DomainModel(parts)


@pytest.mark.parametrize("early", [True, False])
@pytest.mark.parametrize("batch", [1, 8])
def test_served_scores_equal_the_reference(early: bool, batch: int) -> None:
    rng = np.random.default_rng(batch)
    model = _model(rng, early)
    values = {
        part_output(*key): (m.means[0] + rng.normal(size=(batch, m.width)) * 2).astype(np.float32)
        for key, m in model.parts.items()
    }
    served = model.scores(values)
    for side in ("image", "text"):
        reference = np.max(
            [
                m.distances(values[part_output(*key)]) / m.threshold
                for key, m in model.parts.items()
                if key[0] == side
            ],
            axis=0,
        )
        np.testing.assert_allclose(served[side], reference, rtol=1e-5)


def test_load_refuses_another_version_or_an_unknown_part(tmp_path: Path) -> None:
    model = _model(np.random.default_rng(0), early=True)
    path = tmp_path / "d.npz"
    model.save(path)
    assert DomainModel.load(path).widths() == model.widths()
    with np.load(path) as data:
        arrays = dict(data)
    for change, message in [
        ({"version": np.array(1)}, "v1"),
        ({"parts": np.array(["image/embedding", "image/colour", "text/embedding"])}, "unknown"),
        ({"parts": np.array(["image/embedding", "image/input_stats"])}, "both sides"),
    ]:
        np.savez(path, **(arrays | change))
        with pytest.raises(DomainModelError, match=message):
            DomainModel.load(path)
