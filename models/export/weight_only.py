"""int8 storage for a graph's big float weights, widened back to float inside the graph.

MatMul/Gemm weights are a small part of a student's file; the word-embedding table and the
Conv weights are most of it. They are stored int8 (symmetric, one fp32 scale per row / output
channel) with standard ops only:

- a table read only by Gather(axis 0) is gathered in int8 first, then Cast → Mul by the
  gathered row scale, so widening costs per token, not per vocabulary row, whatever the
  session's optimization level;
- a Conv weight becomes Cast(int8) → Mul(scale), which onnxruntime constant-folds when the
  session is created: the Conv kernel sees (and pre-packs) a constant fp32 weight as before
  (DequantizeLinear is not folded and measured ~15 % slower); given the mean of each Conv's
  input, the Conv's bias absorbs the shift the rounding causes (`models.export.conv_bias`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.export.conv_bias import bias_shift, conv_group

# Below these sizes a weight stays fp32: position/token-type tables and a stem conv on raw
# pixels are a few KB each, not worth their rounding error or an extra node per token.
MIN_TABLE_ELEMENTS = 65536
MIN_CONV_ELEMENTS = 4096
# The domain check's constants (`models.export.domain_features`: the export wrapper's `domain`
# module) stay fp32: the check was fitted to their exact values, on the fp32 graph.
KEEP_FP32_PREFIX = "domain."
INT8_MAX = 127


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row of `weight` reshaped to [rows, -1]: weight ≈ q * scale[row].

    scale = max|row| / 127, so the largest value maps to ±127 and the error is ≤ scale / 2;
    an all-zero row gets scale 1 (q = 0) instead of a division by zero.
    """
    rows = weight.reshape(weight.shape[0], -1).astype(np.float32)
    if not np.isfinite(rows).all():
        raise ValueError("cannot quantize a weight with NaN or infinite values")
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(rows / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q.reshape(weight.shape), scale


@dataclass
class WeightStorage:
    """What `store_weights_int8` rewrote: counts and initializer bytes before/after."""

    counts: Counter[str] = field(default_factory=Counter)
    bytes_fp32: Counter[str] = field(default_factory=Counter)
    bytes_int8: Counter[str] = field(default_factory=Counter)
    biases_corrected: int = 0  # Conv nodes (a weight read by two Convs corrects two biases)

    def add(self, kind: str, before: np.ndarray, after: list[np.ndarray]) -> None:
        self.counts[kind] += 1
        self.bytes_fp32[kind] += before.nbytes
        self.bytes_int8[kind] += sum(a.nbytes for a in after)

    def summary(self) -> dict[str, dict[str, int]]:
        summary = {
            kind: {
                "rewritten": self.counts[kind],
                "bytes_fp32": self.bytes_fp32[kind],
                "bytes_int8": self.bytes_int8[kind],
            }
            for kind in ("gather_tables", "conv_weights")
        }
        summary["conv_weights"]["biases_corrected"] = self.biases_corrected
        return summary


def store_weights_int8(
    model: onnx.ModelProto, input_means: Mapping[str, np.ndarray] | None = None
) -> WeightStorage:
    """Rewrite large fp32 embedding tables and Conv weights of `model` (in place) to int8;
    with `input_means` (per-channel means of Conv inputs, by tensor name), correct the bias
    of every rewritten Conv whose input has one."""
    graph = model.graph
    storage = WeightStorage()
    uses = _consumers(graph)
    names = _all_names(graph)
    biases = _BiasCorrection(graph, names, input_means or {})
    replaced: dict[str, list[onnx.NodeProto]] = {}  # by the Gather's output name
    widened: list[onnx.NodeProto] = []
    for init in list(graph.initializer):
        nodes = uses.get(init.name, [])
        if _is_table(init, nodes):
            table = _add_table_int8(graph, init, names, storage)
            replaced.update({n.output[0]: _gather_int8(n, table, names) for n in nodes if n})
        elif _is_conv_weight(init, nodes):
            widened.extend(_conv_weight_int8(graph, init, names, storage, biases, nodes))
    new_nodes = [*widened]
    for node in graph.node:
        new_nodes.extend(replaced.get(node.output[0], [node]) if node.output else [node])
    del graph.node[:]
    graph.node.extend(new_nodes)
    biases.drop_unused()
    return storage


class _BiasCorrection:
    """Gives each Conv whose weight was rounded a corrected bias of its own (a bias constant
    may be shared: the exporter stores bit-identical constants once)."""

    def __init__(
        self, graph: onnx.GraphProto, names: set[str], means: Mapping[str, np.ndarray]
    ) -> None:
        self.graph, self.names, self.means = graph, names, means
        self.replaced: set[str] = set()
        # the graph's constants as it came: one lookup per Conv, not a scan
        self.constants = {init.name: init for init in graph.initializer}

    def correct(self, node: onnx.NodeProto, weight: np.ndarray, dequantized: np.ndarray) -> bool:
        """Point `node` at bias − shift; False (left as is) when its input has no recorded mean
        or its bias is computed, not a constant."""
        mean = self.means.get(node.input[0])
        if mean is None:
            return False
        old = node.input[2] if len(node.input) > 2 else ""  # "" also: an omitted optional input
        bias = self._value(old) if old else np.zeros(weight.shape[0], np.float32)
        if bias is None:
            return False
        shift = bias_shift(weight, dequantized, mean, conv_group(node))
        name = _fresh(self.names, f"{node.name or node.output[0]}_bias_corrected")
        corrected = (bias.astype(np.float64) - shift).astype(np.float32)
        self.graph.initializer.append(numpy_helper.from_array(corrected, name))
        if len(node.input) > 2:
            node.input[2] = name
        else:
            node.input.append(name)
        if old:
            self.replaced.add(old)
        return True

    def _value(self, name: str) -> np.ndarray | None:
        init = self.constants.get(name)
        return None if init is None else numpy_helper.to_array(init)

    def drop_unused(self) -> None:
        """Remove replaced biases no node reads any more."""
        read = set(_consumers(self.graph))
        for init in list(self.graph.initializer):
            if init.name in self.replaced and init.name not in read:
                self.graph.initializer.remove(init)


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto | None]]:
    """Top-level nodes by input name; a graph input/output or subgraph read counts as None
    (left alone: only top-level nodes are rewritten)."""
    uses: dict[str, list[onnx.NodeProto | None]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
        for name in _subgraph_reads(node):
            uses.setdefault(name, []).append(None)
    for value in [*graph.input, *graph.output]:
        uses.setdefault(value.name, []).append(None)
    return uses


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """Names read inside `node`'s subgraphs (If/Loop/Scan bodies), at any depth."""
    graphs = [attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH]
    graphs += [g for attr in node.attribute for g in attr.graphs]
    reads: set[str] = set()
    for g in graphs:
        for inner in g.node:
            reads |= set(inner.input) | _subgraph_reads(inner)
    return reads


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {init.name for init in graph.initializer}
    names |= {n.name for n in graph.node} | {o for n in graph.node for o in n.output}
    return names


def _fresh(names: set[str], base: str) -> str:
    """`base`, or `base_<n>` if taken; reserved so later calls never reuse it."""
    name, n = base, 0
    while name in names:
        n += 1
        name = f"{base}_{n}"
    names.add(name)
    return name


def _large_float(init: onnx.TensorProto, min_elements: int) -> bool:
    return init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements


def _is_table(init: onnx.TensorProto, nodes: list[onnx.NodeProto | None]) -> bool:
    """A [rows, dim] table read only as Gather(axis 0) data: rows widen after gathering."""
    return (
        len(init.dims) == 2
        and not init.name.startswith(KEEP_FP32_PREFIX)
        and _large_float(init, MIN_TABLE_ELEMENTS)
        and bool(nodes)
        and all(_gathers_rows(n, init.name) for n in nodes)
    )


def _gathers_rows(node: onnx.NodeProto | None, name: str) -> bool:
    """Gather(axis 0) that reads `name` as its data only."""
    if node is None or node.op_type != "Gather":
        return False
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    return axis == 0 and node.input[0] == name != node.input[1]


def _is_conv_weight(init: onnx.TensorProto, nodes: list[onnx.NodeProto | None]) -> bool:
    """A weight read only as Conv's W input, whose axis 0 is the output channel."""
    return (
        _large_float(init, MIN_CONV_ELEMENTS)
        and bool(nodes)
        and all(_is_conv_w(n, init.name) for n in nodes)
    )


def _is_conv_w(node: onnx.NodeProto | None, name: str) -> bool:
    if node is None or node.op_type != "Conv":
        return False
    return node.input[1] == name and name not in (node.input[0], *node.input[2:])


def _replace_initializer(
    graph: onnx.GraphProto, old: onnx.TensorProto, new: list[onnx.TensorProto]
) -> None:
    graph.initializer.remove(old)
    graph.initializer.extend(new)


def _add_table_int8(
    graph: onnx.GraphProto, init: onnx.TensorProto, names: set[str], storage: WeightStorage
) -> tuple[str, str]:
    """int8 table [V, D] and its row scales as a [V, 1] column: (table name, scale name)."""
    name, weight = init.name, numpy_helper.to_array(init)
    q, scale = quantize_rows(weight)
    column = scale.reshape(-1, 1)
    q_name = _fresh(names, f"{name}_int8")
    s_name = _fresh(names, f"{name}_row_scale")
    _replace_initializer(
        graph, init, [numpy_helper.from_array(q, q_name), numpy_helper.from_array(column, s_name)]
    )
    storage.add("gather_tables", weight, [q, column])
    return q_name, s_name


def _gather_int8(
    node: onnx.NodeProto, table: tuple[str, str], names: set[str]
) -> list[onnx.NodeProto]:
    """Gather(int8 rows, ids) → Cast(float) → Mul(Gather(row scales, ids)), same output."""
    q_name, s_name = table
    ids, out = node.input[1], node.output[0]
    rows, widened, scales = (_fresh(names, f"{out}_{s}") for s in ("int8", "float", "scale"))
    base = node.name or out
    return [
        helper.make_node("Gather", [q_name, ids], [rows], _fresh(names, base), axis=0),
        helper.make_node(
            "Cast", [rows], [widened], _fresh(names, f"{base}_cast"), to=TensorProto.FLOAT
        ),
        helper.make_node("Gather", [s_name, ids], [scales], _fresh(names, f"{base}_s"), axis=0),
        helper.make_node("Mul", [widened, scales], [out], _fresh(names, f"{base}_mul")),
    ]


def _conv_weight_int8(
    graph: onnx.GraphProto,
    init: onnx.TensorProto,
    names: set[str],
    storage: WeightStorage,
    biases: _BiasCorrection,
    convs: list[onnx.NodeProto | None],
) -> list[onnx.NodeProto]:
    """int8 weight per output channel → Cast → Mul(scale), under the original weight name.

    Not DequantizeLinear: by default onnxruntime does not constant-fold it (it keeps QDQ
    groups for its int8 kernels), so it ran on every call and the Conv lost its pre-packed
    NCHWc weight: the student graph was ~15% slower at batch 1 and 32. Cast and Mul on
    constants are folded when the session is created (any optimization level but "disable"),
    so the Conv kernel sees a constant fp32 weight as before.
    """
    name, weight = init.name, numpy_helper.to_array(init)
    q, scale = quantize_rows(weight)
    column = scale.reshape(-1, *[1] * (weight.ndim - 1))
    q_name, s_name, widened = (_fresh(names, f"{name}_{s}") for s in ("int8", "scale", "float"))
    _replace_initializer(
        graph, init, [numpy_helper.from_array(q, q_name), numpy_helper.from_array(column, s_name)]
    )
    storage.add("conv_weights", weight, [q, column])
    if biases.means:
        dequantized = q.astype(np.float32) * column
        storage.biases_corrected += sum(
            biases.correct(node, weight, dequantized) for node in convs if node is not None
        )
    return [
        helper.make_node(
            "Cast", [q_name], [widened], _fresh(names, f"{name}_cast"), to=TensorProto.FLOAT
        ),
        helper.make_node("Mul", [widened, s_name], [name], _fresh(names, f"{name}_mul")),
    ]
