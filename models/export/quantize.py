"""Dynamic int8 quantization of the bundle graph: MatMul/Gemm weights only.

On this CPU quantizing Conv (ViT/MobileViT patch and conv stems) or the embedding Gather made
inference slower, so only MatMul/Gemm with a constant weight operand are quantized (weights
int8 per tensor, activations quantized at run time). The int8 graph ships only when each
task's dev macro-F1 drops by at most `MAX_MACRO_F1_DROP`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

QUANTIZED_OP_TYPES = ("MatMul", "Gemm")
MAX_MACRO_F1_DROP = 0.01  # 1 point of macro-F1, per task
# Op types that would mean something other than MatMul/Gemm got quantized.
FORBIDDEN_INT8_OPS = frozenset({"ConvInteger", "QLinearConv", "QGather", "GatherBlockQuantized"})


def quantize_int8(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write the int8 graph to `dst`; return what was quantized (for the manifest)."""
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
    counts = op_counts(dst)
    bad = sorted(set(counts) & FORBIDDEN_INT8_OPS)
    if bad:
        raise RuntimeError(f"int8 graph quantized ops outside MatMul/Gemm: {bad}")
    return {
        "quantized_op_types": list(QUANTIZED_OP_TYPES),
        "weight_type": "int8 per tensor (dynamic activation quantization)",
        "int8_ops": {
            op: counts[op] for op in ("MatMulInteger", "DynamicQuantizeLinear") if op in counts
        },
        "float_ops_left": {op: counts.get(op, 0) for op in ("MatMul", "Gemm", "Conv")},
    }


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
