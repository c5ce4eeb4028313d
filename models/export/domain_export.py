"""The domain check inside `fusionserve export`: fitted on every export that has data, so a
re-export (a retrained student, a new backbone) refits it with no extra step.

Two moments: before the graph is exported, `prepare_domain` reads the training split and
builds the graph's domain module (input statistics, whose token table comes from the training
texts, and the image backbone's early-block tap where it has one);
after, `fit_bundle_domain` runs the *exported* fp32 graph over train and dev, their images decoded
as the service decodes them (the check is fitted to what the service will compute), fits
`domain.npz` into the bundle, and measures it: own dev
and train flag rates, the fixed synthetic images (`models.data.synthetic`), the int8 graph's
own dev rate, the empty-text fallback, and the self-test sample's scores per graph; then
appends the scoring to each graph file (`models.export.domain_graph`), checked on dev.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
from torch import nn

from app.contract.domain import DOMAIN_FILE, DOMAIN_OUTPUTS, SCORE_KEYS, DomainModel
from app.contract.domain_bundle import graph_score_problems
from app.contract.graph import INPUT_NAMES
from app.contract.image import ImageLimits, preprocess_image
from app.contract.manifest import (
    INT8_MODEL_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    DomainSpec,
    Preprocessing,
)
from app.contract.self_test import SELF_TEST_LIMITS, self_test_inputs
from app.contract.text import TextEncoder
from models.data.synthetic import synthetic_images
from models.export.dev_data import DataSource, DevSet, load_dev_set
from models.export.domain_early import EarlyFeatures, early_block
from models.export.domain_features import (
    DomainFeatures,
    ImageStats,
    TextStats,
    token_counts,
    token_table,
)
from models.export.domain_fit import FALSE_FLAG_RATE, fit_domain
from models.export.domain_graph import add_domain_scores_to_file
from models.export.ort_eval import make_session, run_session

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DomainData:
    """The training split as graph inputs and the graph module fitted from its texts."""

    train: DevSet
    split: str
    features: DomainFeatures


def prepare_domain(
    data: DataSource,
    train_split: str,
    tokenizer_json: str,
    max_length: int,
    vocab: int,
    limit: int | None = None,
    model: nn.Module | None = None,
) -> DomainData:
    """Read `train_split` of `data` and build the input statistics it implies; with the
    `model` to export, tap its image backbone's early block when it has a known one."""
    train = load_dev_set(
        dataclasses.replace(data, split=train_split), tokenizer_json, max_length, limit
    )
    pre = Preprocessing(image_size=data.image_size, max_text_length=max_length)
    table = token_table(token_counts(train.input_ids, train.attention_mask, vocab))
    block = None if model is None else early_block(model)
    early = None if block is None else EarlyFeatures(block)
    image = ImageStats(data.image_size, pre.mean, pre.std)
    features = DomainFeatures(image, TextStats(table), early)
    return DomainData(train, train_split, features)


def _outputs(session: ort.InferenceSession, arrays: Arrays, batch: int) -> dict[str, np.ndarray]:
    out = run_session(session, *arrays, batch_size=batch)
    return {name: out[name] for name in DOMAIN_OUTPUTS if name in out}


def _rates(scores: Mapping[str, np.ndarray]) -> dict[str, Any]:
    flagged = {side: s > 1.0 for side, s in scores.items()}
    either = np.logical_or.reduce(list(flagged.values()))
    rates = {side: round(float(f.mean()), 4) for side, f in flagged.items()}
    return {"either": round(float(either.mean()), 4), **rates, "samples": len(either)}


def as_served(data: DevSet, pre: Preprocessing) -> DevSet:
    """`data` with its images decoded by serving's `preprocess_image`, not training's decode.

    Why: serving decodes a large JPEG at 1/2-1/8 scale in the DCT domain (its fast path), which
    moves the input statistics and early activations a little; thresholds fitted on the
    training decode flagged 5.4 % of the wound student's dev cases through the service where
    export had measured 5.0 % (its images are mostly JPEGs of 224 px and more)."""
    pixels = _served_pixels((s.image_path.read_bytes() for s in data.samples), pre, ImageLimits())
    return dataclasses.replace(data, pixel_values=pixels)


def _served_pixels(images: Iterable[bytes], pre: Preprocessing, limits: ImageLimits) -> np.ndarray:
    """Encoded images → f32 [N, 3, S, S], decoded by serving's `preprocess_image`."""
    return np.stack(
        [preprocess_image(i, pre.image_size, pre.mean, pre.std, limits).pixels for i in images]
    )


def _synthetic(pre: Preprocessing, tokenizer_json: str) -> tuple[Arrays, list[str]]:
    """The fixed synthetic images with an empty text (the service's fallback), as served."""
    images = synthetic_images()
    pixels = _served_pixels((i.png for i in images), pre, SELF_TEST_LIMITS)
    encoder = TextEncoder(Tokenizer.from_str(tokenizer_json), pre.max_text_length, pre.empty_text)
    encoded = encoder.encode([""] * len(images))
    return (pixels, encoded.input_ids, encoded.attention_mask), [i.kind for i in images]


def _synthetic_rates(image_scores: np.ndarray, kinds: list[str]) -> dict[str, Any]:
    flagged = image_scores > 1.0
    names = np.asarray(kinds)
    by_kind = {
        kind: round(float(flagged[names == kind].mean()), 4) for kind in dict.fromkeys(kinds)
    }
    return {"image": round(float(flagged.mean()), 4), "by_kind": by_kind, "samples": len(kinds)}


def _sample_scores(
    model: DomainModel, session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]
) -> dict[str, float]:
    pixels, ids, mask = (feeds[name] for name in INPUT_NAMES)
    scores = model.scores(_outputs(session, (pixels, ids, mask), 1))
    return {side: float(s[0]) for side, s in scores.items()}


def fit_bundle_domain(
    domain: DomainData,
    dev: DevSet,
    staging: Path,
    pre: Preprocessing,
    tokenizer_json: str,
    sessions: Mapping[str, ort.InferenceSession],
    sample: tuple[bytes, str],
    batch: int = 32,
) -> DomainSpec:
    """Fit `domain.npz` into `staging` from the fp32 graph (`sessions["fp32"]`; an "int8"
    session, when given, is measured too) on train and dev decoded as served (`as_served`),
    and describe it for the manifest."""
    fp32 = sessions["fp32"]
    train_set, dev = as_served(domain.train, pre), as_served(dev, pre)
    train = _outputs(fp32, train_set.rows(len(train_set)), batch)
    dev_out = _outputs(fp32, dev.rows(len(dev)), batch)
    fitted, per_part = fit_domain(train, train_set.labels[:, 0], dev_out)
    path = staging / DOMAIN_FILE
    fitted.save(path)
    model = DomainModel.load(path)  # score with the stored (float32) values, as serving does
    synthetic, kinds = _synthetic(pre, tokenizer_json)
    synthetic_scores = model.scores(_outputs(fp32, synthetic, batch))
    metrics: dict[str, Any] = {
        "own_dev": _rates(model.scores(dev_out)),
        "own_train": _rates(model.scores(train)),
        "synthetic_images": _synthetic_rates(synthetic_scores["image"], kinds),
        "empty_text_score": round(float(synthetic_scores["text"][0]), 4),
    }
    if "int8" in sessions:
        int8_dev = _outputs(sessions["int8"], dev.rows(len(dev)), batch)
        metrics["int8_own_dev"] = _rates(model.scores(int8_dev))
    feeds = self_test_inputs(sample[0], sample[1], staging / TOKENIZER_FILE, pre)
    self_test = {p: _sample_scores(model, s, feeds) for p, s in sessions.items()}
    metrics["graph_scores_max_abs_diff"] = _scores_into_graphs(model, staging, sessions, dev)
    return DomainSpec(
        file=DOMAIN_FILE,
        method=model.method,
        version=model.version,
        outputs=model.widths(),
        false_flag_rate=FALSE_FLAG_RATE,
        fitted_on={
            "train": {"split": domain.split, "samples": len(train_set)},
            "images": "decoded as served (app.contract.image.preprocess_image)",
            "dev": {"samples": len(dev)},
            "class_means": "task 1 labels",
            "per_part_rate": round(per_part, 4),
        },
        self_test=self_test,
        metrics=metrics,
        scores_in_graph=True,
    )


def _scores_into_graphs(
    model: DomainModel,
    staging: Path,
    sessions: Mapping[str, ort.InferenceSession],
    dev: DevSet,
    batch: int = 32,
) -> float:
    """Append the scoring nodes to each graph file in `staging` (`models.export.domain_graph`)
    and check them on dev against the numpy form on the same run (`graph_score_problems`, as
    verify does: the scores and the cases flagged); fails the export otherwise → the largest
    |graph − numpy| seen."""
    worst = 0.0
    for precision in sessions:
        path = staging / (MODEL_FILE if precision == "fp32" else INT8_MODEL_FILE)
        add_domain_scores_to_file(path, model)
        session = make_session(path)
        out = run_session(session, *dev.rows(len(dev)), batch_size=batch)
        reference = model.scores({name: out[name] for name in model.widths()})
        if problems := graph_score_problems(reference, out):
            raise RuntimeError(f"{path.name}: " + "; ".join(problems))
        for side, want in reference.items():
            worst = max(worst, float(np.max(np.abs(out[SCORE_KEYS[side]] - want))))
    return worst
