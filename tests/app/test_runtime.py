"""Served graphs: provider fallback, precision choice, batch shapes, I/O binding."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.contract.image import ImageLimits
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder, bucketed_length
from app.preprocess import InputSpec, prepare
from app.runtime import choose_model_file, load_onnx_model, uses_io_binding
from tests.app.helpers import WOUND_IMAGE, WOUND_TEXT, tiny_settings

CPU = "CPUExecutionProvider"


def test_unavailable_provider_warns_and_serves_on_cpu(
    tiny_bundle_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = tiny_bundle_dir / "wound-student"
    if "NoSuchExecutionProvider" in ort.get_available_providers():  # pragma: no cover
        pytest.skip("impossible provider exists")
    settings = tiny_settings(tiny_bundle_dir, providers=["NoSuchExecutionProvider", CPU])
    with caplog.at_level(logging.WARNING, logger="fusionserve.runtime"):
        model = load_onnx_model(bundle, Manifest.load(bundle), settings)
    assert model.provider == CPU
    assert "NoSuchExecutionProvider" in caplog.text


def test_int8_precision_uses_the_quantized_graph_when_shipped(tiny_bundle_dir: Path) -> None:
    wound = tiny_bundle_dir / "wound-student"
    path, precision = choose_model_file(wound, Manifest.load(wound), "int8")
    assert (path.name, precision) == ("model.int8.onnx", "int8")
    medpix = tiny_bundle_dir / "medpix-student"
    path, precision = choose_model_file(medpix, Manifest.load(medpix), "int8")
    assert (path.name, precision) == ("model.onnx", "fp32")


def test_int8_and_fp32_agree_roughly(tiny_bundle_dir: Path) -> None:
    bundle = tiny_bundle_dir / "wound-student"
    manifest = Manifest.load(bundle)
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, manifest.preprocessing.max_text_length)
    item = prepare(
        WOUND_IMAGE.read_bytes(),
        WOUND_TEXT,
        InputSpec.from_manifest(manifest, encoder, ImageLimits()),
    )
    fp32 = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir, precision="fp32"))
    int8 = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir, precision="int8"))
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    a, b = fp32.run_batch([item])[0], int8.run_batch([item])[0]
    assert abs(float(b["probs_type"].sum()) - 1.0) < 1e-4
    assert float(np.max(np.abs(a["probs_type"] - b["probs_type"]))) < 0.2


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_dynamic_batch_axis(tiny_bundle_dir: Path, batch: int) -> None:
    bundle = tiny_bundle_dir / "medpix-student"
    manifest = Manifest.load(bundle)
    model = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir))
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, manifest.preprocessing.max_text_length)
    spec = InputSpec.from_manifest(manifest, encoder, ImageLimits())
    item = prepare(WOUND_IMAGE.read_bytes(), WOUND_TEXT, spec)
    outputs = model.run_batch([item] * batch)
    assert len(outputs) == batch
    for row in outputs:  # identical inputs → identical rows, whatever the batch size
        np.testing.assert_allclose(row["probs_location"], outputs[0]["probs_location"], rtol=1e-5)


class _RecordingSession:
    """Wraps a session and records the text length of every batch it runs."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session, self.lengths = session, []  # type: ignore[var-annotated]

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.lengths.append(feeds["input_ids"].shape[1])
        return self.session.run(names, feeds)


@pytest.mark.parametrize(("name", "dynamic"), [("medpix-student", True), ("wound-student", False)])
def test_dynamic_text_graphs_run_batches_cut_to_their_longest_text(
    tiny_bundle_dir: Path, name: str, dynamic: bool
) -> None:
    """The medpix fixture has a symbolic sequence axis, the wound one a fixed length: both
    serve, the first at the bucketed length, with the answers of the full padding."""
    bundle = tiny_bundle_dir / name
    manifest = Manifest.load(bundle)
    model = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir))
    assert model.dynamic_text is dynamic
    length = manifest.preprocessing.max_text_length
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, length)
    spec = InputSpec.from_manifest(manifest, encoder, ImageLimits())
    items = [prepare(WOUND_IMAGE.read_bytes(), t, spec) for t in ("wound", WOUND_TEXT[:30])]
    full = model.session.run(
        model.output_names,
        {
            "pixel_values": np.stack([i.pixel_values for i in items]),
            "input_ids": np.stack([i.input_ids for i in items]),
            "attention_mask": np.stack([i.attention_mask for i in items]),
        },
    )
    recorder = _RecordingSession(model.session)
    model.session = recorder  # type: ignore[assignment]
    for row, out in enumerate(model.run_batch(items)):
        for index, output in enumerate(model.output_names):
            np.testing.assert_allclose(out[output], full[index][row], atol=1e-6)
    longest = max(min(i.text_tokens, length) for i in items)
    assert recorder.lengths == [bucketed_length(longest, length) if dynamic else length]
    assert (recorder.lengths[0] < length) is dynamic


def test_io_binding_is_automatic_on_gpu_providers_only() -> None:
    assert uses_io_binding("auto", "CUDAExecutionProvider")
    assert uses_io_binding("auto", "TensorrtExecutionProvider")
    assert not uses_io_binding("auto", CPU)
    assert uses_io_binding("on", CPU) and not uses_io_binding("off", "CUDAExecutionProvider")


def test_io_bound_runs_match_plain_runs_at_several_batch_sizes(tiny_bundle_dir: Path) -> None:
    bundle = tiny_bundle_dir / "wound-student"
    manifest = Manifest.load(bundle)
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, manifest.preprocessing.max_text_length)
    spec = InputSpec.from_manifest(manifest, encoder, ImageLimits())
    items = [
        prepare(WOUND_IMAGE.read_bytes(), text, spec)
        for text in (WOUND_TEXT, "", WOUND_TEXT + " spreading redness and swelling")
    ]
    plain = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir, io_binding="off"))
    bound = load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir, io_binding="on"))
    assert (plain.io_binding, bound.io_binding, bound.device) == (False, True, "cpu")
    for size in (1, 2, 3):
        for a, b in zip(plain.run_batch(items[:size]), bound.run_batch(items[:size]), strict=True):
            assert a.keys() == b.keys()
            for name in a:
                np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-6)
