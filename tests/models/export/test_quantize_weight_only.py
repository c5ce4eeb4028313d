"""Weight-only int8 storage on hand-built graphs: the per-row arithmetic, which weights are
rewritten (and which are not), and that the rewritten graph computes the dequantized weights
exactly at any batch size and text length."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.export.quantize import check_int8_ops
from models.export.weight_only import (
    KEEP_FP32_PREFIX,
    MIN_CONV_ELEMENTS,
    MIN_TABLE_ELEMENTS,
    quantize_rows,
    store_weights_int8,
)

VOCAB, DIM = 4096, 32  # 131072 elements: above MIN_TABLE_ELEMENTS
CONV_OUT, CONV_IN = 32, 16  # 32×16×3×3 = 4608: above MIN_CONV_ELEMENTS


def test_quantize_rows_arithmetic() -> None:
    table = np.array(
        [[0.5, -1.27, 0.01], [0.0, 0.0, 0.0], [3.0, 1.0, -0.75], [1.5e-6, -2e-6, 0.0]],
        dtype=np.float32,
    )
    q, scale = quantize_rows(table)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    np.testing.assert_allclose(scale, [1.27 / 127, 1.0, 3.0 / 127, 2e-6 / 127], rtol=1e-6)
    np.testing.assert_array_equal(q[0], [50, -127, 1])
    np.testing.assert_array_equal(q[1], [0, 0, 0])  # zero row: scale 1, no division by zero
    np.testing.assert_array_equal(q[2], [127, 42, -32])  # 42.33 → 42, -31.75 → -32
    np.testing.assert_array_equal(q[3], [95, -127, 0])  # tiny rows keep full resolution
    assert np.abs(q).max(axis=1).tolist() == [127, 0, 127, 127]  # the peak maps to ±127


def test_quantize_rows_error_bound_and_channel_axis() -> None:
    weight = np.random.default_rng(0).normal(size=(8, 4, 3, 3)).astype(np.float32)
    weight[3] *= 100.0  # one loud channel must not cost the others their resolution
    q, scale = quantize_rows(weight)
    assert q.shape == weight.shape and scale.shape == (8,)
    error = np.abs(q * scale[:, None, None, None] - weight)
    assert (error <= scale[:, None, None, None] / 2 * (1 + 1e-5)).all()
    assert scale[3] > 50 * np.delete(scale, 3).max()


def test_quantize_rows_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize_rows(np.array([[1.0, np.inf]], dtype=np.float32))


def _graph(rng: np.random.Generator) -> onnx.ModelProto:
    """ids → big word table + small type table (Gather); pixels → Conv; a big table also read
    by Transpose → MatMul (tied weights) must stay float."""
    inits = {
        "word": rng.normal(size=(VOCAB, DIM)),
        "types": rng.normal(size=(2, DIM)),
        "tied": rng.normal(size=(VOCAB, DIM)),
        "conv_w": rng.normal(size=(CONV_OUT, CONV_IN, 3, 3)),
        "conv_b": rng.normal(size=(CONV_OUT,)),
        "stem_w": rng.normal(size=(CONV_IN, 3, 1, 1)),
        "two": np.array(2),
    }
    nodes = [
        helper.make_node("Gather", ["word", "input_ids"], ["word_rows"], axis=0),
        helper.make_node("Mod", ["input_ids", "two"], ["type_ids"]),
        helper.make_node("Gather", ["types", "type_ids"], ["type_rows"]),
        helper.make_node("Add", ["word_rows", "type_rows"], ["text"]),
        helper.make_node("Gather", ["tied", "input_ids"], ["tied_rows"], axis=0),
        helper.make_node("Transpose", ["tied"], ["tied_t"]),
        helper.make_node("MatMul", ["tied_rows", "tied_t"], ["logits"]),
        helper.make_node("Conv", ["pixel_values", "stem_w"], ["stem"]),
        helper.make_node("Conv", ["stem", "conv_w", "conv_b"], ["image"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "weights",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 8, 8]),
        ],
        [
            helper.make_tensor_value_info("text", TensorProto.FLOAT, ["batch", "seq", DIM]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", VOCAB]),
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", CONV_OUT, 8, 8]),
        ],
        [
            numpy_helper.from_array(v.astype(np.int64 if v.ndim == 0 else np.float32), k)
            for k, v in inits.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto, ids: np.ndarray, pixels: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, {"input_ids": ids, "pixel_values": pixels}))


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_rewrites_big_gather_table_and_conv_only() -> None:
    model = _graph(np.random.default_rng(1))
    storage = store_weights_int8(model)
    onnx.checker.check_model(model)
    summary = storage.summary()
    table_bytes = VOCAB * DIM * 4
    assert summary["gather_tables"] == {
        "rewritten": 1,
        "bytes_fp32": table_bytes,
        "bytes_int8": VOCAB * DIM + VOCAB * 4,  # int8 table + fp32 row scales
    }
    assert summary["conv_weights"]["rewritten"] == 1  # the 3→16 1×1 stem is below the floor
    assert summary["conv_weights"]["bytes_int8"] == CONV_OUT * CONV_IN * 9 + CONV_OUT * 4
    assert CONV_IN * 3 < MIN_CONV_ELEMENTS and 2 * DIM < MIN_TABLE_ELEMENTS

    inits = _initializers(model)
    assert inits["word_int8"].dtype == np.int8 and "word" not in inits
    assert inits["conv_w_int8"].dtype == np.int8 and "conv_w" not in inits
    for kept in ("types", "tied", "stem_w", "conv_b"):  # small, or read by MatMul too
        assert inits[kept].dtype == np.float32
    ops = [n.op_type for n in model.graph.node]
    assert "DequantizeLinear" not in ops
    # The int8 rows are gathered first: per token, never the whole vocabulary.
    gathers = {n.input[0]: n.input[1] for n in model.graph.node if n.op_type == "Gather"}
    assert gathers["word_int8"] == gathers["word_row_scale"] == "input_ids"
    assert inits["word_row_scale"].shape == (VOCAB, 1)


def test_the_domain_checks_table_stays_float() -> None:
    """The check's token table is fitted to its fp32 values: the same Gather-read shape as a
    word table, left alone because of its name."""
    rng = np.random.default_rng(2)
    domain = f"{KEEP_FP32_PREFIX}text.table"
    tables = {name: rng.normal(size=(VOCAB, DIM)).astype(np.float32) for name in ("word", domain)}
    graph = helper.make_graph(
        [helper.make_node("Gather", [n, "input_ids"], [f"{n}/rows"]) for n in tables],
        "tables",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [
            helper.make_tensor_value_info(f"{n}/rows", TensorProto.FLOAT, ["batch", "seq", DIM])
            for n in tables
        ],
        [numpy_helper.from_array(v, n) for n, v in tables.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    assert store_weights_int8(model).summary()["gather_tables"]["rewritten"] == 1
    inits = _initializers(model)
    assert "word_int8" in inits and inits[domain].dtype == np.float32
    np.testing.assert_array_equal(inits[domain], tables[domain])


def _dequantized(model: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    """`model` with the named fp32 weights replaced by q * scale (what int8 storage keeps)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in names:
            q, scale = quantize_rows(numpy_helper.to_array(init))
            widened = q.astype(np.float32) * scale.reshape(-1, *[1] * (q.ndim - 1))
            init.CopyFrom(numpy_helper.from_array(widened, init.name))
    return out


@pytest.mark.parametrize(("batch", "seq"), [(1, 2), (3, 17), (8, 64)])
def test_rewritten_graph_computes_the_dequantized_weights(batch: int, seq: int) -> None:
    rng = np.random.default_rng(2)
    fp32 = _graph(np.random.default_rng(3))
    reference = _dequantized(fp32, ("word", "conv_w"))
    int8 = _graph(np.random.default_rng(3))
    store_weights_int8(int8)
    ids = rng.integers(0, VOCAB, (batch, seq)).astype(np.int64)
    ids[0, 0] = VOCAB - 1  # the last row too
    pixels = rng.normal(size=(batch, 3, 8, 8)).astype(np.float32)
    text, logits, _ = _run(fp32, ids, pixels)
    expected = _run(reference, ids, pixels)
    text8, logits8, image8 = _run(int8, ids, pixels)
    assert text8.shape == (batch, seq, DIM) and image8.shape == (batch, CONV_OUT, 8, 8)
    np.testing.assert_array_equal(logits8, logits)  # the tied table is untouched
    np.testing.assert_allclose(text8, expected[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(image8, expected[2], rtol=1e-5, atol=1e-4)
    # and each embedding row is within half a step of the fp32 row
    _, scale = quantize_rows(_initializers(fp32)["word"])
    assert (np.abs(text8 - text).max(axis=-1) <= scale[ids] / 2 + 1e-5).all()


def test_int8_op_check_rejects_int8_compute_outside_matmul() -> None:
    model = _graph(np.random.default_rng(4))
    store_weights_int8(model)
    check_int8_ops(model, _op_counts(model))  # storage-only rewrite passes
    for bad in ("ConvInteger", "QLinearConv", "QuantizeLinear"):
        with pytest.raises(RuntimeError, match=bad):
            check_int8_ops(model, _op_counts(model) + Counter({bad: 1}))
    activation = helper.make_node("DequantizeLinear", ["logits", "s"], ["y"], name="act_dq")
    model.graph.node.append(activation)
    with pytest.raises(RuntimeError, match="act_dq"):
        check_int8_ops(model, _op_counts(model))


def _op_counts(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)
