"""The domain check fitted by the real `fusionserve export` (the tiny MedPix model on the full
train and dev splits): the bundle lists `domain.npz` with its sha256, the graph has the domain
outputs (four: the tiny model's backbone has no early block) and scores them itself, serving
fetches only the scores, the manifest states how it was fitted and what it measured, verify
recomputes the sample's scores, and a changed domain file or recorded score, or a graph that
disagrees with its domain file, fails verify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.bundle_loader import load_bundle
from app.contract.domain import DOMAIN_FILE, DOMAIN_OUTPUTS, SCORE_KEYS, DomainModel
from app.contract.domain_bundle import GRAPH_SCORE_TOLERANCE
from app.contract.image import image_to_array, load_image_file, preprocess_image
from app.contract.manifest import MODEL_FILE, Manifest, Preprocessing, sha256_file
from app.contract.self_test import bundle_self_test_inputs
from app.settings import Settings
from app.verify_cli import verify_bundle
from models.data import Sample
from models.export.dev_data import DevSet
from models.export.domain_export import as_served
from tests.app.helpers import WOUND_IMAGE


def test_export_fits_and_describes_the_check(tiny_bundle: Path) -> None:
    manifest = Manifest.load(tiny_bundle)
    spec = manifest.domain
    assert spec is not None and spec.file == DOMAIN_FILE
    assert manifest.files[DOMAIN_FILE] == sha256_file(tiny_bundle / DOMAIN_FILE)
    session = ort.InferenceSession(str(tiny_bundle / MODEL_FILE))
    widths = {o.name: o.shape[-1] for o in session.get_outputs() if o.name in DOMAIN_OUTPUTS}
    assert widths == spec.outputs and list(widths) == [o for o in DOMAIN_OUTPUTS if o in widths]
    assert len(widths) == 4 and "early_image" not in widths
    model = DomainModel.load(tiny_bundle / DOMAIN_FILE)
    assert model.widths() == spec.outputs and (model.method, model.version) == (spec.method, 2)
    assert spec.fitted_on["train"] == {"split": "train", "samples": 1653}
    assert "preprocess_image" in spec.fitted_on["images"]
    own = spec.metrics["own_dev"]
    assert own["samples"] == 197 and own["either"] <= spec.false_flag_rate
    assert set(spec.metrics["synthetic_images"]["by_kind"]) == {
        "blank",
        "black",
        "noise",
        "text_screenshot",
    }
    assert set(spec.self_test) == {"fp32", "int8"} if manifest.int8 else {"fp32"}
    assert all(np.isfinite(v) for scores in spec.self_test.values() for v in scores.values())
    report = verify_bundle(tiny_bundle)
    assert report.ok, report.problems
    assert any("domain scores" in line for line in report.passed)


def test_the_check_is_fitted_on_images_decoded_as_served() -> None:
    """A JPEG over twice the model size: serving's DCT-scaled decode differs from training's,
    and `as_served` gives exactly serving's pixels (what the bundle is fitted on)."""
    size = 112
    pre = Preprocessing(image_size=size, max_text_length=8)
    sample = Sample(WOUND_IMAGE, "a wound", (0, 0), "g")
    training = image_to_array(load_image_file(WOUND_IMAGE), size)[None]  # CHW, normalised
    data = DevSet(
        [sample],
        training,
        np.zeros((1, 8), np.int64),
        np.ones((1, 8), np.int64),
        np.zeros((1, 2), np.int64),
    )
    served = preprocess_image(WOUND_IMAGE.read_bytes(), size, pre.mean, pre.std).pixels
    got = as_served(data, pre)
    np.testing.assert_array_equal(got.pixel_values[0], served)
    assert np.abs(training[0] - served).max() > 0.01  # the two decodes do differ here
    assert got.input_ids is data.input_ids and got.samples == data.samples


def test_the_graph_scores_and_serving_fetches_only_the_scores(tiny_bundle: Path) -> None:
    manifest = Manifest.load(tiny_bundle)
    assert manifest.domain is not None and manifest.domain.scores_in_graph
    assert 0 <= manifest.domain.metrics["graph_scores_max_abs_diff"] < 0.01
    bundle = load_bundle(tiny_bundle, Settings(precision="fp32", intra_op_threads=1))
    fetched = bundle.onnx.output_names
    assert set(SCORE_KEYS.values()) <= set(fetched)
    assert not set(DOMAIN_OUTPUTS) & set(fetched)  # the parts stay in the graph, unfetched
    session = ort.InferenceSession(str(tiny_bundle / MODEL_FILE))
    names = [o.name for o in session.get_outputs()]
    feeds = bundle_self_test_inputs(tiny_bundle, manifest)
    full = dict(zip(names, session.run(names, feeds), strict=True))
    assert bundle.domain is not None
    want = bundle.domain.scores({name: full[name] for name in bundle.domain.widths()})
    item = bundle.prepare(
        (tiny_bundle / manifest.self_test.image).read_bytes(), manifest.self_test.text
    )
    row = bundle.run_batch([item])[0]
    for side, key in SCORE_KEYS.items():
        assert float(row[key]) == pytest.approx(float(want[side][0]), rel=GRAPH_SCORE_TOLERANCE)


def test_a_bundle_without_graph_scores_is_scored_in_numpy(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """Bundles exported before the graph scored (`scores_in_graph` absent) still serve: the
    parts are fetched and scored by `DomainScorer`, to the graph's own scores."""
    older = tmp_path / "older"
    shutil.copytree(tiny_bundle, older)
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["domain"]["scores_in_graph"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    settings = Settings(precision="fp32", intra_op_threads=1)
    new, old = load_bundle(tiny_bundle, settings), load_bundle(older, settings)
    assert set(DOMAIN_OUTPUTS) & set(old.onnx.output_names)
    assert not set(SCORE_KEYS.values()) & set(old.onnx.output_names)
    sample = Manifest.load(tiny_bundle).self_test
    assert sample is not None
    item = new.prepare((tiny_bundle / sample.image).read_bytes(), sample.text)
    graph_row, numpy_row = new.run_batch([item])[0], old.run_batch([item])[0]
    for key in SCORE_KEYS.values():
        assert float(numpy_row[key]) == pytest.approx(
            float(graph_row[key]), rel=GRAPH_SCORE_TOLERANCE
        )


def test_verify_fails_when_the_graph_and_the_domain_file_disagree(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """A domain file refitted without re-scoring the graph (thresholds doubled, rehashed)."""
    edited = tmp_path / "refit"
    shutil.copytree(tiny_bundle, edited)
    model = DomainModel.load(edited / DOMAIN_FILE)
    model.with_thresholds({k: 2 * m.threshold for k, m in model.parts.items()}).save(
        edited / DOMAIN_FILE
    )
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["files"][DOMAIN_FILE] = sha256_file(edited / DOMAIN_FILE)
    (edited / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_bundle(edited).problems
    assert any("graph domain score" in p for p in problems), problems


def test_verify_fails_on_a_changed_domain_file_or_score(tiny_bundle: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(tiny_bundle, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["domain"]["self_test"]["fp32"]["image"] += 0.5
    (edited / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_bundle(edited).problems
    assert any("domain score (image)" in p for p in problems), problems

    corrupted = tmp_path / "corrupted"
    shutil.copytree(tiny_bundle, corrupted)
    data = bytearray((corrupted / DOMAIN_FILE).read_bytes())
    data[-100] ^= 0xFF
    (corrupted / DOMAIN_FILE).write_bytes(bytes(data))
    problems = verify_bundle(corrupted).problems
    assert any(p.startswith(f"{DOMAIN_FILE}: sha256") for p in problems), problems
