"""int8: only MatMul/Gemm compute in int8 (Conv and Gather compute in float; large Conv weights
and embedding tables are only stored int8), the graph still runs close to fp32, and the
shipping rule is "≤ 1 macro-F1 point per task"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from app.contract.graph import prob_output
from models.export.dev_data import DevSet
from models.export.ort_eval import make_session, run_session
from models.export.quantize import (
    int8_acceptable,
    macro_f1_drops,
    op_counts,
    quantize_int8,
)
from models.export.weight_only import MIN_TABLE_ELEMENTS


def test_int8_quantizes_matmul_and_gemm_only(
    tiny_bundle: Path, tmp_path: Path, medpix_dev32: DevSet
) -> None:
    src, dst = tiny_bundle / "model.onnx", tmp_path / "model.int8.onnx"
    details = quantize_int8(src, dst)
    counts = op_counts(dst)
    assert counts["MatMulInteger"] > 0 and counts["DynamicQuantizeLinear"] > 0
    assert details["int8_ops"]["MatMulInteger"] == counts["MatMulInteger"]
    assert not {"ConvInteger", "QLinearConv", "QLinearMatMul"} & set(counts)
    assert counts["Conv"] == op_counts(src)["Conv"] >= 1  # ViT patch embedding computes in float

    model = onnx.load(str(dst))
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    int8s = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert int8s, "no int8 weights"
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in floats]
    assert gathers, "this tiny vocabulary's table is below the size floor: it stays float"
    assert all(np.prod(dims[n.input[0]]) < MIN_TABLE_ELEMENTS for n in gathers)
    # The 16×3×32×32 patch-embedding weight is stored int8 and widened before the Conv.
    assert details["weight_only_int8"]["conv_weights"]["rewritten"] == 1
    assert [dims[n] for n in int8s if len(dims[n]) == 4] == [[16, 3, 32, 32]]
    assert not any(n.doc_string or n.metadata_props for n in model.graph.node)

    fp32 = run_session(make_session(src), *medpix_dev32.rows(32))
    int8 = run_session(make_session(dst), *medpix_dev32.rows(32))
    # the probability outputs; the domain check's embeddings and statistics are not
    # distributions (their int8 values are checked against the recorded scores by verify)
    for name, value in fp32.items():
        if not name.startswith(prob_output("")):
            continue
        np.testing.assert_allclose(int8[name].sum(axis=1), 1.0, atol=1e-5)
        # Close, not equal: this random model's widened weights amplify rounding, and its
        # tokenizer is retrained per session (WordPieceTrainer breaks ties differently per
        # process): seen mean 0.006–0.032, max 0.016–0.12. A broken graph drifts by ~0.3.
        diff = np.abs(int8[name] - value)
        assert diff.mean() < 0.06 and diff.max() < 0.3, (name, diff.mean(), diff.max())
    assert dst.stat().st_size < src.stat().st_size


def test_shipping_rule() -> None:
    fp32 = {"modality": {"macro_f1": 0.90}, "location": {"macro_f1": 0.70}}
    ok = {"modality": {"macro_f1": 0.895}, "location": {"macro_f1": 0.71}}
    bad = {"modality": {"macro_f1": 0.90}, "location": {"macro_f1": 0.6899}}
    assert macro_f1_drops(fp32, ok) == pytest.approx({"modality": 0.005, "location": -0.01})
    assert int8_acceptable(macro_f1_drops(fp32, ok))
    assert int8_acceptable({"modality": 0.01, "location": 0.0})
    assert not int8_acceptable(macro_f1_drops(fp32, bad))
