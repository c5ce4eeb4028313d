"""A bundle ready to serve: what every request to it needs, built whole by `app.bundle_loader`.

There is no half-loaded bundle: a `LoadedBundle` exists only once its files matched their
sha256, its session opened and its warm-up self-test passed. The service and the bench both
use it, so the bench measures exactly what is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.contract.domain import SCORE_KEYS, DomainModel
from app.contract.manifest import Manifest
from app.model_settings import ModelSettings
from app.postprocess import Prediction, postprocess
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.runtime import OnnxModel

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class LoadedBundle:
    """One bundle's manifest, settings, preprocessing and warm session, and its load times."""

    name: str
    bundle_dir: Path
    manifest: Manifest
    settings: ModelSettings  # effective: env over serving.json over the global defaults
    inputs: InputSpec
    onnx: OnnxModel
    load_s: float
    warmup_s: float
    domain: DomainModel | None = None  # the fitted domain check, when the bundle has one

    @property
    def version(self) -> str:
        return self.manifest.version

    def prepare(self, image: bytes, text: str) -> PreparedInputs:
        """Raw bytes + text → graph inputs (blocking: run it in the preprocessing pool)."""
        return prepare(image, text, self.inputs)

    def run_batch(self, items: Sequence[PreparedInputs]) -> list[Outputs]:
        """Run prepared items as one batch (blocking: one of the model's inference threads); with a
        domain check, each item's outputs gain its per-side scores (`SCORE_KEYS`) in place of
        the raw embeddings, scored for the whole batch at once."""
        outputs = self.onnx.run_batch(items)
        if self.domain is not None:
            add_domain_scores(self.domain, outputs)
        return outputs

    def postprocess(
        self, outputs: Mapping[str, np.ndarray], low_confidence: float, text_empty: bool = False
    ) -> Prediction:
        """One item's outputs → labelled predictions, flagged below `low_confidence` or out of
        domain (`text_empty`: the service substituted its fallback text)."""
        return postprocess(self.manifest, outputs, low_confidence, text_empty)


def add_domain_scores(domain: DomainModel, outputs: list[Outputs]) -> None:
    """Replace each item's domain parts by its per-side scores (one batched computation);
    nothing to do when the graph computed the scores itself (`DomainSpec.scores_in_graph`)."""
    if outputs and all(key in outputs[0] for key in SCORE_KEYS.values()):
        return
    values = {
        name: outputs[0].pop(name)[None]  # one item: a view, no copy
        if len(outputs) == 1
        else np.stack([row.pop(name) for row in outputs])
        for name in domain.widths()
    }
    for side, scores in domain.scores(values).items():
        for row, score in zip(outputs, scores, strict=True):
            row[SCORE_KEYS[side]] = np.asarray(score, dtype=np.float64)
