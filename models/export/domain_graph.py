"""The domain check's scoring as nodes of the bundle's own graph: outputs `domain_score_<side>`.

Why in the graph: scored in numpy after each run, the check's few dozen small calls paid
Python's overhead on caches the graph run had just evicted (measured on the MedPix student at
batch 1: 94 µs alone, 270–400 µs right after a run, 5–6 % of the graph). As nodes, the same
arithmetic runs inside the one `session.run`, and serving fetches two [B] outputs instead of
five [B, d] parts.

The nodes compute exactly what `app.contract.domain_scorer.DomainScorer` computes, from the
same `ScoringPlan` arrays: the float32 product of the centred parts, then float64 for the
squares, class minimum and side maximum (thresholds folded in). The part outputs stay graph
outputs (for `fusionserve verify`, which checks the graph's scores against the numpy form from
them, and for refits); serving does not fetch them. Every node only the check needs runs after
those the answers need (`_check_last`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.contract.domain import SCORE_KEYS, DomainModel

_PREFIX = "domain_check/"


def _name(suffix: str) -> str:
    return f"{_PREFIX}{suffix}"


class _Builder:
    """Collects the appended nodes and their constants."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []

    def constant(self, suffix: str, value: np.ndarray) -> str:
        name = _name(f"const/{suffix}")
        self.constants.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], suffix: str, **attributes: Any) -> str:
        output = _name(suffix)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _squared(b: _Builder, domain: DomainModel) -> str:
    """Nodes for [B, parts] (distance / threshold)² (f64), as `DomainScorer.scores` computes it
    (the thresholds are folded into the plan's arrays)."""
    plan = domain.plan
    products, centred = [], []
    for i, group in enumerate(plan.groups):
        x = (
            group.outputs[0]
            if len(group.outputs) == 1
            else b.node("Concat", list(group.outputs), f"g{i}/x", axis=1)
        )
        centred.append(b.node("Sub", [x, b.constant(f"g{i}/center", group.center)], f"g{i}/c"))
        products.append(
            b.node("MatMul", [centred[i], b.constant(f"g{i}/project", group.project)], f"g{i}/y")
        )
    y32 = products[0] if len(products) == 1 else b.node("Concat", products, "y32", axis=1)
    y = b.node("Cast", [y32], "y", to=TensorProto.DOUBLE)
    squares = b.node("Mul", [y, y], "y_squared")
    quad = b.node("MatMul", [squares, b.constant("weights", plan.weights)], "quad")
    if with_rest := plan.with_rest:
        # rest·|x|² of the low-rank parts, in float64 (it cancels against the linear terms):
        # [B, Σd]² @ [Σd, parts], the groups' rest matrices stacked
        rest = np.concatenate([plan.groups[i].rest for i in with_rest])
        joined = (
            centred[with_rest[0]]
            if len(with_rest) == 1
            else b.node("Concat", [centred[i] for i in with_rest], "low_rank", axis=1)
        )
        x64 = b.node("Cast", [joined], "low_rank64", to=TensorProto.DOUBLE)
        norms = b.node("Mul", [x64, x64], "low_rank_squared")
        placed = b.node("MatMul", [norms, b.constant("rest", rest)], "rest_norms")
        quad = b.node("Add", [quad, placed], "quad_with_norms")
    linear = b.node(
        "Gather", [y, b.constant("linear", plan.linear.astype(np.int64))], "linear", axis=1
    )
    axis2 = b.constant("axis2", np.asarray([2], dtype=np.int64))
    d2 = b.node(
        "Add",
        [
            b.node("Add", [linear, b.constant("constants", plan.constants)], "linear_plus_c"),
            b.node("Unsqueeze", [quad, axis2], "quad3"),
        ],
        "d2",
    )
    nearest = b.node("ReduceMin", [d2, axis2], "nearest", keepdims=0)
    zero = b.constant("zero", np.asarray(0.0))
    return b.node("Max", [nearest, zero], "nonnegative")  # (distance / threshold)², [B, parts]


def add_domain_scores(model: onnx.ModelProto, domain: DomainModel) -> onnx.ModelProto:
    """`model` with outputs `domain_score_<side>` f64[B] appended (the part outputs stay)."""
    existing = {o.name for o in model.graph.output}
    if any(name in existing for name in SCORE_KEYS.values()):
        raise ValueError("the graph already has domain score outputs")
    missing = [name for name in domain.widths() if name not in existing]
    if missing:
        raise ValueError(f"the graph lacks the domain parts {missing}")
    b = _Builder()
    squared = _squared(b, domain)
    batch = onnx.TensorShapeProto.Dimension()
    batch.CopyFrom(model.graph.output[0].type.tensor_type.shape.dim[0])  # the graph's batch axis
    axis1 = b.constant("axis1", np.asarray([1], dtype=np.int64))
    outputs = []
    for side, cols in domain.plan.sides.items():
        starts = b.constant(f"{side}/start", np.asarray([cols.start], dtype=np.int64))
        ends = b.constant(f"{side}/end", np.asarray([cols.stop], dtype=np.int64))
        part = b.node("Slice", [squared, starts, ends, axis1], f"{side}/parts")
        largest = b.node("ReduceMax", [part, axis1], f"{side}/largest", keepdims=0)
        b.nodes.append(helper.make_node("Sqrt", [largest], [SCORE_KEYS[side]]))
        info = helper.make_tensor_value_info(SCORE_KEYS[side], TensorProto.DOUBLE, [None])
        info.type.tensor_type.shape.dim[0].CopyFrom(batch)
        outputs.append(info)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.extend(b.nodes)
    out.graph.initializer.extend(b.constants)
    out.graph.output.extend(outputs)
    _check_last(out, set(domain.widths()) | set(SCORE_KEYS.values()))
    return out


def _check_last(model: onnx.ModelProto, check_outputs: set[str]) -> None:
    """Move the nodes only the check needs after all others, in place (a valid order: nothing
    the answers need depends on them). onnxruntime runs a graph in its node order, and the
    check's small nodes interleaved with the backbone's found their kernels and inputs out of
    cache each time (measured on the MedPix student at batch 1: 11.1 % of the graph's time
    interleaved, 5.8 % run together at the end)."""
    nodes = list(model.graph.node)
    producer = {name: i for i, node in enumerate(nodes) for name in node.output}
    needed: set[int] = set()
    pending = [o.name for o in model.graph.output if o.name not in check_outputs]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in producer:
            continue
        seen.add(name)
        needed.add(producer[name])
        pending.extend(nodes[producer[name]].input)
    order = [n for i, n in enumerate(nodes) if i in needed]
    order += [n for i, n in enumerate(nodes) if i not in needed]
    del model.graph.node[:]
    model.graph.node.extend(order)


def add_domain_scores_to_file(path: Path, domain: DomainModel) -> None:
    """Rewrite the graph file at `path` with the scores appended (in place)."""
    model = onnx.load(str(path))
    onnx.save(add_domain_scores(model, domain), str(path))
