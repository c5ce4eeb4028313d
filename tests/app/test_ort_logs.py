"""onnxruntime's C++ log lines become `onnxruntime` logger records; other stderr output passes."""

from __future__ import annotations

import logging
import os

import numpy as np
import onnxruntime as ort
import pytest

from app.ort_logs import ort_logs_to_logger, parse

onnx = pytest.importorskip("onnx")


def _graph_with_unused_initializer() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    unused = numpy_helper.from_array(np.zeros(1, np.float32), "unused_weight")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y], initializer=[unused]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return bytes(model.SerializeToString())


def test_parse_onnxruntime_lines() -> None:
    line = (
        b"\x1b[0;93m2026-11-29 19:52:33.763759271 [W:onnxruntime:, graph.cc:5809 "
        b"CleanUnusedInitializersAndNodeArgs] Removing initializer 'w'.\x1b[m\n"
    )
    level, message = parse(line) or (0, "")
    assert level == logging.WARNING
    assert message == (
        "Removing initializer 'w'. (graph.cc:5809 CleanUnusedInitializersAndNodeArgs)"
    )
    assert parse(b"2026-11-29 19:52:33 [E:onnxruntime:Default, x.cc:1 F] boom\n") == (
        logging.ERROR,
        "boom (x.cc:1 F)",
    )
    assert parse(b'{"level": "info", "message": "ours"}\n') is None


def test_session_warnings_reach_the_logger_not_stderr(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.WARNING, logger="onnxruntime"), ort_logs_to_logger():
        ort.InferenceSession(_graph_with_unused_initializer(), providers=["CPUExecutionProvider"])
        os.write(2, b"not from onnxruntime\n")
    records = [r for r in caplog.records if r.name == "onnxruntime"]
    assert any("Removing initializer 'unused_weight'" in r.getMessage() for r in records)
    assert all(r.levelno == logging.WARNING for r in records)
    err = capfd.readouterr().err
    assert "not from onnxruntime" in err
    assert ":onnxruntime:" not in err
