"""Conv bias correction for int8-stored weights: the shift arithmetic against a real Conv, the
input means read from a real graph, and a corrected graph that keeps each channel's mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.export.conv_bias import bias_shift, conv_input_means
from models.export.weight_only import quantize_rows, store_weights_int8

CHANNELS, SIZE = 32, 10


def _dequantized(weight: np.ndarray) -> np.ndarray:
    q, scale = quantize_rows(weight)
    return q.astype(np.float32) * scale.reshape(-1, *[1] * (weight.ndim - 1))


def _conv(weight: np.ndarray, group: int, pixels: np.ndarray) -> np.ndarray:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=group)],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(pixels.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": pixels})[0])


@pytest.mark.parametrize(
    ("group", "out_channels", "in_channels"), [(1, 8, 6), (2, 8, 6), (6, 6, 6)]
)
def test_shift_is_what_rounding_does_to_the_conv_on_its_mean_input(
    group: int, out_channels: int, in_channels: int
) -> None:
    rng = np.random.default_rng(group)
    weight = rng.normal(size=(out_channels, in_channels // group, 3, 3)).astype(np.float32)
    mean = rng.normal(size=in_channels).astype(np.float32)
    # every position of an unpadded Conv on a constant image reads exactly the channel means
    pixels = np.broadcast_to(mean[None, :, None, None], (1, in_channels, 5, 5)).copy()
    dequantized = _dequantized(weight)
    change = _conv(dequantized, group, pixels) - _conv(weight, group, pixels)
    shift = bias_shift(weight, dequantized, mean, group)
    assert shift.shape == (out_channels,) and np.abs(shift).max() > 1e-4
    np.testing.assert_allclose(
        change, np.broadcast_to(shift[None, :, None, None], change.shape), atol=2e-5
    )


def test_shift_refuses_a_mean_of_the_wrong_width() -> None:
    weight = np.ones((4, 2, 1, 1), np.float32)
    with pytest.raises(ValueError, match="cannot read 3 input channels"):
        bias_shift(weight, weight, np.zeros(3), group=2)


OUTPUTS = ("a", "b", "depthwise", "small")


def _convs(rng: np.random.Generator) -> onnx.ModelProto:
    """pixel_values → stem Conv → Relu → two 3x3 Convs sharing one bias constant (the exporter
    stores bit-identical constants once) with a 1x1 Conv too small to be rewritten that reads
    it as well, and a depthwise 5x5 Conv whose bias input is omitted (""); the text inputs
    exist, unused, as in a bundle graph."""
    shared = rng.normal(size=CHANNELS).astype(np.float32)
    inits = {
        "stem_w": rng.normal(size=(CHANNELS, 3, 1, 1)),
        "stem_b": rng.normal(size=CHANNELS) + 1.0,  # a positive mean input, as after ReLU6
        "a_w": rng.normal(size=(CHANNELS, CHANNELS, 3, 3)) * 0.1,
        "b_w": rng.normal(size=(CHANNELS, CHANNELS, 3, 3)) * 0.1,
        "dw_w": rng.normal(size=(CHANNELS * 8, 1, 5, 5)) * 0.3,  # 6400 elements: rewritten
        "small_w": rng.normal(size=(CHANNELS, CHANNELS, 1, 1)),  # 1024: stays float
        "shared_b": shared,
    }
    nodes = [
        helper.make_node("Conv", ["pixel_values", "stem_w", "stem_b"], ["stem"]),
        helper.make_node("Relu", ["stem"], ["act"]),
        helper.make_node("Conv", ["act", "a_w", "shared_b"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["act", "b_w", "shared_b"], ["b"], name="conv_b"),
        helper.make_node("Conv", ["act", "small_w", "shared_b"], ["small"], name="conv_small"),
        helper.make_node(
            "Conv", ["act", "dw_w", ""], ["depthwise"], name="conv_dw", group=CHANNELS, pads=[2] * 4
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "convs",
        [
            helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["n", 3, SIZE, SIZE]),
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "l"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "l"]),
        ],
        [
            helper.make_tensor_value_info(
                "a", TensorProto.FLOAT, ["n", CHANNELS, SIZE - 2, SIZE - 2]
            ),
            helper.make_tensor_value_info(
                "b", TensorProto.FLOAT, ["n", CHANNELS, SIZE - 2, SIZE - 2]
            ),
            helper.make_tensor_value_info(
                "depthwise", TensorProto.FLOAT, ["n", CHANNELS * 8, SIZE, SIZE]
            ),
            helper.make_tensor_value_info("small", TensorProto.FLOAT, ["n", CHANNELS, SIZE, SIZE]),
        ],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _inputs(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pixels = rng.normal(size=(rows, 3, SIZE, SIZE)).astype(np.float32)
    ids = np.ones((rows, 4), np.int64)
    return pixels, ids, ids


def _outputs(model: onnx.ModelProto, pixels: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.ones((len(pixels), 4), np.int64)
    feeds = {"pixel_values": pixels, "input_ids": ids, "attention_mask": ids}
    return [np.asarray(o) for o in session.run(list(OUTPUTS), feeds)]


def test_input_means_are_the_graphs_own_activations(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = _convs(rng)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    inputs = _inputs(rng, 13)
    means = conv_input_means(path, inputs, batch_size=4, threads=1)  # 4 + 4 + 4 + 1 rows
    assert set(means) == {"pixel_values", "act"}
    np.testing.assert_allclose(means["pixel_values"], inputs[0].mean(axis=(0, 2, 3)), atol=1e-6)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    stem = np.einsum("oc,nchw->nohw", inits["stem_w"][:, :, 0, 0], inputs[0])
    act = np.maximum(stem + inits["stem_b"][None, :, None, None], 0.0)
    np.testing.assert_allclose(means["act"], act.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


def test_corrected_graph_keeps_each_channels_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    fp32 = _convs(rng)
    path = tmp_path / "model.onnx"
    onnx.save(fp32, str(path))
    means = conv_input_means(path, _inputs(rng, 64), threads=1)

    plain, corrected = onnx.ModelProto(), onnx.ModelProto()
    plain.CopyFrom(fp32)
    corrected.CopyFrom(fp32)
    assert store_weights_int8(plain).summary()["conv_weights"]["biases_corrected"] == 0
    summary = store_weights_int8(corrected, means).summary()["conv_weights"]
    assert summary["rewritten"] == 3 and summary["biases_corrected"] == 3
    onnx.checker.check_model(corrected)

    # each rewritten Conv got a bias of its own (the depthwise one in its omitted input's
    # place); the small float Conv still reads the shared bias, which therefore stays
    convs = {n.name: n for n in corrected.graph.node if n.op_type == "Conv"}
    assert len(convs["conv_dw"].input) == 3
    biases = {convs[c].input[2] for c in ("conv_a", "conv_b", "conv_dw")}
    names = {i.name for i in corrected.graph.initializer}
    assert len(biases) == 3 and biases <= names and "shared_b" not in biases
    assert convs["conv_small"].input[1:] == ["small_w", "shared_b"] and "shared_b" in names

    held_out = _inputs(np.random.default_rng(2), 64)[0]  # not the rows the means came from
    reference = _outputs(fp32, held_out)
    outputs = zip(
        OUTPUTS, _outputs(plain, held_out), _outputs(corrected, held_out), reference, strict=True
    )
    for name, got_plain, got_corrected, want in outputs:
        if name == "small":  # not rewritten: exact in both
            np.testing.assert_array_equal(got_corrected, want)
            continue
        drift_plain = np.abs((got_plain - want).mean(axis=(0, 2, 3))).mean()
        drift_corrected = np.abs((got_corrected - want).mean(axis=(0, 2, 3))).mean()
        assert drift_corrected < 0.5 * drift_plain, (name, drift_plain, drift_corrected)
