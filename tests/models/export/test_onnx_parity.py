"""Parity: for every fusion, the exported graph computes what PyTorch computes.

ORT vs eager PyTorch, max |Δprob| ≤ 1e-4 on real MedPix dev samples at batch sizes 1, 7 and 32
from ONE exported graph (the dynamic batch axis), with temperatures ≠ 1 baked in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from tokenizers import Tokenizer

from app.contract.text import bucketed_length
from models.export.dev_data import DevSet
from models.export.onnx_export import (
    CalibratedProbabilities,
    ExportError,
    check_graph_contract,
    export_onnx,
)
from models.export.ort_eval import (
    make_session,
    max_abs_diff,
    parity_by_batch,
    run_session,
    run_torch,
)
from models.fusion import FUSIONS
from tests.models.export.conftest import IMAGE_SIZE, MAX_LENGTH, TEST_TEMPERATURES, tiny_model

TOLERANCE = 1e-4


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_onnx_matches_pytorch_at_batch_1_7_32(
    fusion: str, tmp_path: Path, medpix_tokenizer: Tokenizer, medpix_dev32: DevSet
) -> None:
    vocab = medpix_tokenizer.get_vocab_size()
    model = tiny_model(fusion, vocab)
    wrapper = CalibratedProbabilities(model, ("modality", "location"), TEST_TEMPERATURES)
    path = tmp_path / "model.onnx"
    export_onnx(wrapper, path, IMAGE_SIZE, MAX_LENGTH, vocab)

    # One self-contained file (no external .data), a recent opset, the contract's names.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    proto = onnx.load(str(path))
    assert not any(init.external_data for init in proto.graph.initializer)
    assert proto.opset_import[0].version >= 17
    expected_outputs = ["probs_modality", "probs_location"]
    if FUSIONS[fusion].has_modality_weights:
        expected_outputs.append("modality_weights")
    session = make_session(path, threads=1)
    assert [o.name for o in session.get_outputs()] == expected_outputs

    inputs = medpix_dev32.rows(32)
    reference = run_torch(wrapper, *inputs)
    # The comparison only means something if the outputs depend on the sample.
    assert reference["probs_location"].std(axis=0).max() > 0.02

    # The reference is softmax(logits / T) of the plain model: temperatures are in the graph.
    with torch.no_grad():
        logits = model(*(torch.from_numpy(a) for a in inputs))["logits_location"]
    calibrated = torch.softmax(logits / TEST_TEMPERATURES[1], -1).numpy()
    np.testing.assert_allclose(reference["probs_location"], calibrated, atol=1e-6)
    assert np.abs(calibrated - torch.softmax(logits, -1).numpy()).max() > 1e-2

    diffs = parity_by_batch(session, wrapper, *inputs, batch_sizes=(1, 7, 32))
    assert set(diffs) == {"1", "7", "32"}
    assert max(diffs.values()) <= TOLERANCE, diffs

    # The same graph at shorter text lengths (the service cuts batches to their longest text).
    pixels, ids, mask = inputs
    tokens = mask.sum(axis=1)
    lengths = {int(tokens.min()), *(bucketed_length(int(n), MAX_LENGTH) for n in tokens)}
    assert min(lengths) < MAX_LENGTH - 8, lengths
    for length in sorted(lengths):
        rows = tokens <= length
        cut = (pixels[rows], ids[rows, :length], mask[rows, :length])
        got = run_session(session, *cut)
        assert max_abs_diff(got, run_torch(wrapper, *cut)) <= TOLERANCE, length
        assert max_abs_diff(got, run_torch(wrapper, *(a[rows] for a in inputs))) <= TOLERANCE


def _graph(batch: str | int, seq: str | int = "seq") -> onnx.ModelProto:
    def value(name: str, dtype: int, dims: list[str | int]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, dtype, dims)

    inputs = [
        value("pixel_values", TensorProto.FLOAT, [batch, 3, IMAGE_SIZE, IMAGE_SIZE]),
        value("input_ids", TensorProto.INT64, [batch, seq]),
        value("attention_mask", TensorProto.INT64, [batch, seq]),
    ]
    outputs = [
        value("probs_modality", TensorProto.FLOAT, [batch, 2]),
        value("probs_location", TensorProto.FLOAT, [batch, 5]),
    ]
    nodes = [helper.make_node("Identity", ["pixel_values"], ["unused"])]
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs))


def test_graph_contract_check() -> None:
    """The dynamo trap (an example batch of 1 silently fixes B) is caught by the check, and
    so is a fixed sequence axis (the service could not cut batches to their longest text)."""
    names = ["probs_modality", "probs_location"]
    check_graph_contract(_graph("batch"), names, IMAGE_SIZE)
    with pytest.raises(ExportError, match="batch axis is not dynamic"):
        check_graph_contract(_graph(1), names, IMAGE_SIZE)
    with pytest.raises(ExportError, match="outputs are"):
        check_graph_contract(_graph("batch"), [*names, "modality_weights"], IMAGE_SIZE)
    with pytest.raises(ExportError, match="input_ids: sequence axis is not dynamic"):
        check_graph_contract(_graph("batch", MAX_LENGTH), names, IMAGE_SIZE)


def test_wrapper_rejects_bad_temperatures(medpix_tokenizer: Tokenizer) -> None:
    model = tiny_model("gated", medpix_tokenizer.get_vocab_size())
    with pytest.raises(ValueError, match="> 0"):
        CalibratedProbabilities(model, ("modality", "location"), (1.0, 0.0))
    with pytest.raises(ValueError, match="two tasks"):
        CalibratedProbabilities(model, ("modality",), (1.0,))
