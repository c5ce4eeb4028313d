"""int8 bundle graph: int8 MatMul/Gemm compute, then int8 storage for the big float weights.

Compute: only MatMul/Gemm with a constant weight operand run in int8 (`quantize_dynamic`:
weights int8 per tensor, activations quantized at run time). On this CPU int8 Conv
(ConvInteger/QLinearConv) and quantized Gather kernels made inference slower, so those ops
compute in float and `FORBIDDEN_INT8_OPS` catches a quantizer that converts them anyway.

Storage: the word-embedding table and the Conv weights, most of a student's file, are then
stored int8 and widened inside the graph (models/export/weight_only.py); given the mean of each
Conv's input on training data, each rounded Conv's bias absorbs the mean shift the rounding
causes (models/export/conv_bias.py).

The int8 graph ships only when each task's dev macro-F1 drops by at most `MAX_MACRO_F1_DROP`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from models.export.weight_only import store_weights_int8

QUANTIZED_OP_TYPES = ("MatMul", "Gemm")
MAX_MACRO_F1_DROP = 0.01  # 1 point of macro-F1, per task
# Op types that would mean something other than MatMul/Gemm computes in int8 (QuantizeLinear:
# static activation quantization). DequantizeLinear stays allowed on a stored weight: widening
# a constant to float is storage, not int8 compute (`check_int8_ops` rejects one on an
# activation).
FORBIDDEN_INT8_OPS = frozenset(
    {"ConvInteger", "QLinearConv", "QGather", "GatherBlockQuantized", "QuantizeLinear"}
)


def quantize_int8(
    src: str | Path, dst: str | Path, conv_input_means: Mapping[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Write the int8 graph to `dst`; return what was quantized (for the manifest).
    `conv_input_means` (`models.export.conv_bias.conv_input_means` of `src`) turns on the
    Conv bias correction."""
    _quantize_matmuls(src, dst)
    model = onnx.load(str(dst))
    storage = store_weights_int8(model, conv_input_means)
    dropped = drop_node_metadata(model)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(dst), save_as_external_data=False)
    counts = op_counts(dst)
    check_int8_ops(model, counts)
    return {
        "quantized_op_types": list(QUANTIZED_OP_TYPES),
        "weight_type": "int8 per tensor (dynamic activation quantization)",
        "int8_ops": {
            op: counts[op] for op in ("MatMulInteger", "DynamicQuantizeLinear") if op in counts
        },
        "float_ops_left": {op: counts.get(op, 0) for op in ("MatMul", "Gemm", "Conv")},
        "weight_only_int8": storage.summary(),
        "node_metadata_bytes_dropped": dropped,
        "file_bytes": {"fp32": Path(src).stat().st_size, "int8": Path(dst).stat().st_size},
    }


def _quantize_matmuls(src: str | Path, dst: str | Path) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns about optional pre-processing
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=list(QUANTIZED_OP_TYPES),
            weight_type=QuantType.QInt8,
            per_channel=False,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.setLevel(level)


def drop_node_metadata(model: onnx.ModelProto) -> int:
    """Clear per-node doc strings and metadata (the exporter's stack traces, FX node text:
    ~0.4 MB, a tenth of the student's int8 file); return the bytes dropped. The fp32 graph
    keeps them for debugging, under the same node names."""
    dropped = 0
    for node in model.graph.node:
        dropped += len(node.doc_string.encode()) + sum(
            len(p.key.encode()) + len(p.value.encode()) for p in node.metadata_props
        )
        node.doc_string = ""
        del node.metadata_props[:]
    return dropped


def check_int8_ops(model: onnx.ModelProto, counts: Counter[str]) -> None:
    """No int8 compute outside MatMul/Gemm; every DequantizeLinear widens a stored weight."""
    bad = sorted(set(counts) & FORBIDDEN_INT8_OPS)
    if bad:
        raise RuntimeError(f"int8 graph quantized ops outside MatMul/Gemm: {bad}")
    weights = {init.name for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] not in weights:
            raise RuntimeError(f"{node.name}: DequantizeLinear on an activation")


def op_counts(path: str | Path) -> Counter[str]:
    model = onnx.load(str(path), load_external_data=False)
    return Counter(node.op_type for node in model.graph.node)


def macro_f1_drops(
    fp32: Mapping[str, Mapping[str, Any]], int8: Mapping[str, Mapping[str, Any]]
) -> dict[str, float]:
    """Per task: fp32 macro-F1 − int8 macro-F1 (positive = int8 is worse)."""
    return {
        task: round(float(fp32[task]["macro_f1"]) - float(int8[task]["macro_f1"]), 6)
        for task in fp32
    }


def int8_acceptable(drops: Mapping[str, float]) -> bool:
    return all(drop <= MAX_MACRO_F1_DROP + 1e-9 for drop in drops.values())
