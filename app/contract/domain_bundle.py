"""A bundle's domain check as serve and verify open it: the file must be the one the manifest
lists (sha256 checked with every other file), the method the manifest names, the widths its
graph outputs have; and the self-test sample must reproduce its recorded scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from app.contract.domain import SCORE_KEYS, DomainModel, DomainModelError
from app.contract.manifest import Manifest

# |got - recorded| / max(1, recorded): fp32 scores differ only by float rounding; int8 kernels
# differ per CPU (see app.contract.self_test), and a distance sums many of those differences.
DOMAIN_TOLERANCE = {"fp32": 1e-3, "int8": 0.1}
# |graph − numpy| / max(1, numpy) for the same graph run: both are float32 products summed in
# different orders (MLAS, OpenBLAS), and a part's rest-variance term cancels against its linear
# terms (measured up to 1.8e-4 on the MedPix student's text side): fp32's self-test tolerance
GRAPH_SCORE_TOLERANCE = DOMAIN_TOLERANCE["fp32"]


def load_bundle_domain(bundle_dir: Path, manifest: Manifest) -> DomainModel | None:
    """The bundle's fitted check, or None when its manifest has none; DomainModelError when
    the file is unlisted or disagrees with the manifest."""
    spec = manifest.domain
    if spec is None:
        return None
    if spec.file not in manifest.files:
        raise DomainModelError(f"{spec.file}: not listed in the manifest's files (no sha256)")
    model = DomainModel.load(bundle_dir / spec.file)
    if (model.method, model.version) != (spec.method, spec.version):
        raise DomainModelError(
            f"{spec.file} holds {model.method!r} v{model.version}, the manifest says "
            f"{spec.method!r} v{spec.version}"
        )
    if model.widths() != dict(spec.outputs):
        raise DomainModelError(
            f"{spec.file} expects outputs {model.widths()}, the manifest lists {spec.outputs}"
        )
    return model


def domain_self_test_problems(
    manifest: Manifest, precision: str, scores: Mapping[str, float]
) -> list[str]:
    """How the sample's scores from one graph differ from the recorded ones (empty: none)."""
    spec = manifest.domain
    if spec is None or precision not in spec.self_test:
        return []
    tolerance = DOMAIN_TOLERANCE.get(precision, DOMAIN_TOLERANCE["int8"])
    problems = []
    for side, want in spec.self_test[precision].items():
        have = float(scores[side])
        if not np.isfinite(have) or abs(have - want) > tolerance * max(1.0, abs(want)):
            problems.append(
                f"domain score ({side}) {have:.4f}, recorded {want:.4f} (tolerance {tolerance})"
            )
    return problems


def graph_score_problems(
    reference: Mapping[str, np.ndarray | float], graph: Mapping[str, np.ndarray]
) -> list[str]:
    """How the graph's own scores (`scores_in_graph`, float32 arithmetic) differ from the numpy
    form's on the same run, side by side for any number of items (empty: none): beyond the
    tolerance, or flagging an item the other does not (thresholds sit between fitted cases,
    `models.export.domain_fit`, so no item may change sides)."""
    problems = []
    for side, want in reference.items():
        want_ = np.asarray(want, dtype=np.float64).reshape(-1)
        have = np.asarray(graph[SCORE_KEYS[side]], dtype=np.float64).reshape(-1)
        gap = np.abs(have - want_) / np.maximum(1.0, np.abs(want_))
        if not np.all(gap <= GRAPH_SCORE_TOLERANCE):
            worst = int(np.argmax(np.where(np.isnan(gap), np.inf, gap)))
            problems.append(
                f"graph domain score ({side}) {have[worst]:.6f}, the domain file gives "
                f"{want_[worst]:.6f}"
            )
        if flips := int(((have > 1.0) != (want_ > 1.0)).sum()):
            problems.append(f"the graph flags {flips} item(s) ({side}) the domain file does not")
    return problems


def item_scores(row: Mapping[str, object]) -> dict[str, float]:
    """side → score from one served item's outputs (after `LoadedBundle.run_batch`)."""
    return {side: float(row[key]) for side, key in SCORE_KEYS.items()}  # type: ignore[arg-type]
