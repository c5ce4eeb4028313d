"""The domain check's scoring as nodes of the bundle's own graph: outputs `domain_score_<side>`.

Why in the graph: scored in numpy after each run, the check's few dozen small calls paid
Python's overhead on caches the graph run had just evicted (measured on the MedPix student at
batch 1: 94 µs alone, 270–400 µs right after a run, 5–6 % of the graph). As nodes, the same
arithmetic runs inside the one `session.run`, and serving fetches two [B] outputs instead of
five [B, d] parts.

The nodes compute what `app.contract.domain_scorer.DomainScorer` computes, from the same
`ScoringPlan` arrays, rearranged so that every step after the parts is one node for all parts
(each node costs some 5-10 µs after a backbone run): per group of parts one
Gemm (the centring folded into its bias, with the per-class constants and, per low-rank part,
the cross term of its squared norm), the squared norms of the low-rank parts, then one product
of [values, values²] with a matrix that sums every part's weighted squares, linear terms and
rest terms into its distance² to each class mean, laid out [sides, parts + 1, classes] (the
extra part of each side is all zero: the side's maximum is never below 0); the class minimum,
the side maximum, a root and one Gather per side. 15 nodes for a student's five parts (26
before, in float64). It runs in float32: every term is divided by its threshold² and centred
on the class means' mean, so the result agrees with the numpy form to about 1e-5, well inside
verify's tolerance (`graph_score_problems`). The part outputs stay graph outputs (for
`fusionserve verify`, which checks the graph's scores against the numpy form from them, and for
refits); serving does not fetch them. Every node only the check needs is listed as soon as its
inputs exist (`_check_early`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.contract.domain import SCORE_KEYS, DomainModel
from app.contract.domain_scorer import ScoringPlan

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
        array = np.array(value, order="C")  # ascontiguousarray would make a scalar [1]
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], suffix: str, **attributes: Any) -> str:
        output = _name(suffix)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


@dataclass
class _Columns:
    """The values the final product reads: [B, width] pieces side by side, and per piece
    column where each (part, class) term sits (`_distance_matrix`)."""

    pieces: list[str] = field(default_factory=list)
    width: int = 0

    def add(self, name: str, width: int) -> int:
        """Append a piece; → its first column."""
        self.pieces.append(name)
        self.width += width
        return self.width - width


_Rest = tuple[int, int, float]  # (column, part, that part's rest precision / threshold²)


def _group_nodes(
    b: _Builder, plan: ScoringPlan, index: int, y_start: int, columns: _Columns
) -> tuple[dict[int, int], list[_Rest]]:
    """Nodes for one group of parts: one Gemm [x | cross terms] and the squared norms of its
    low-rank parts → (its y columns' places in the columns, its rest terms: each column is
    multiplied by its part's rest precision)."""
    group = plan.groups[index]
    x = (
        group.outputs[0]
        if len(group.outputs) == 1
        else b.node("Concat", list(group.outputs), f"g{index}/x", axis=1)
    )
    center, project = group.center.astype(np.float64), group.project.astype(np.float64)
    low = [p for p in range(group.rest.shape[1]) if group.rest[:, p].any()]
    rows = [group.rest[:, p] != 0 for p in low]
    lows = [(p, float(group.rest[r, p][0])) for r, p in zip(rows, low, strict=True)]
    # |x - c|² of a part = |x|² - 2c·x + |c|²: the last two as Gemm columns
    cross = np.stack([np.where(r, -2.0 * center, 0.0) for r in rows], axis=1) if low else None
    weight = project if cross is None else np.concatenate([project, cross], axis=1)
    bias = np.concatenate([-center @ project, [float(center[r] @ center[r]) for r in rows]])
    width = project.shape[1]
    for part, classes in enumerate(plan.linear):  # fold each part's constants into its columns
        for c, y in enumerate(classes):
            if y_start <= y < y_start + width:
                bias[y - y_start] += plan.constants[part, c]
    gemm = b.node(
        "Gemm",
        [
            x,
            b.constant(f"g{index}/weight", weight.astype(np.float32)),
            b.constant(f"g{index}/bias", bias.astype(np.float32)),
        ],
        f"g{index}/y",
    )
    first = columns.add(gemm, weight.shape[1])
    places = {y_start + j: first + j for j in range(width)}
    rest = [(first + width + j, p, q) for j, (p, q) in enumerate(lows)]
    if len(low) == 1 and len(group.outputs) == 1:
        axis1 = b.constant(f"g{index}/axis1", np.asarray([1], dtype=np.int64))
        norm = b.node("ReduceSumSquare", [x, axis1], f"g{index}/norm", keepdims=1)
        rest.append((columns.add(norm, 1), *lows[0]))
    elif low:  # several parts: each one's |x|² by an indicator product
        indicator = np.stack(rows, axis=1).astype(np.float32)
        squares = b.node("Mul", [x, x], f"g{index}/squares")
        norms = b.node(
            "MatMul", [squares, b.constant(f"g{index}/indicator", indicator)], f"g{index}/norms"
        )
        first_norm = columns.add(norms, len(low))
        rest += [(first_norm + j, p, q) for j, (p, q) in enumerate(lows)]
    return places, rest


def _distance_matrix(
    plan: ScoringPlan, places: dict[int, int], rest: list[_Rest], width: int
) -> tuple[np.ndarray, int]:
    """[2·width, sides·slots·C]: [values, values²] → every part's distance² to each class
    mean, at (side, slot, class); → (matrix, slots per side)."""
    classes = plan.linear.shape[1]
    slots = max(s.stop - s.start for s in plan.sides.values()) + 1  # + the all-zero part
    matrix = np.zeros((2 * width, len(plan.sides) * slots * classes))

    slot = {  # part → its (side, slot) position, flattened
        part: side * slots + part - cols.start
        for side, cols in enumerate(plan.sides.values())
        for part in range(cols.start, cols.stop)
    }

    def targets(part: int) -> slice:
        return slice(slot[part] * classes, (slot[part] + 1) * classes)

    for part in range(plan.linear.shape[0]):
        out = targets(part)
        for c, y in enumerate(plan.linear[part]):
            matrix[places[int(y)], out.start + c] = 1.0
        for y in np.flatnonzero(plan.weights[:, part]):
            matrix[width + places[int(y)], out] = plan.weights[y, part]
    for column, part, precision in rest:
        matrix[column, targets(part)] = precision
    return matrix, slots


def _side_scores(b: _Builder, domain: DomainModel) -> str:
    """Nodes for [B, sides] float64 scores (largest part distance / threshold per side)."""
    plan = domain.plan
    columns = _Columns()
    places: dict[int, int] = {}
    rest: list[_Rest] = []
    y_start = 0
    for index, group in enumerate(plan.groups):
        group_places, group_rest = _group_nodes(b, plan, index, y_start, columns)
        places.update(group_places)
        rest += group_rest
        y_start += group.project.shape[1]
    matrix, slots = _distance_matrix(plan, places, rest, columns.width)
    values = (
        columns.pieces[0]
        if len(columns.pieces) == 1
        else b.node("Concat", columns.pieces, "values", axis=1)
    )
    squares = b.node("Mul", [values, values], "squares")
    both = b.node("Concat", [values, squares], "values_and_squares", axis=1)
    d2 = b.node("MatMul", [both, b.constant("distances", matrix.astype(np.float32))], "d2")
    shape = np.asarray([-1, len(plan.sides), slots, plan.linear.shape[1]], dtype=np.int64)
    laid_out = b.node("Reshape", [d2, b.constant("layout", shape)], "d2_by_part")
    nearest = b.node(
        "ReduceMin",
        [laid_out, b.constant("axis3", np.asarray([3], np.int64))],
        "nearest",
        keepdims=0,
    )
    largest = b.node(
        "ReduceMax",
        [nearest, b.constant("axis2", np.asarray([2], np.int64))],
        "largest",
        keepdims=0,
    )
    root = b.node("Sqrt", [largest], "root")
    return b.node("Cast", [root], "scores", to=TensorProto.DOUBLE)


def add_domain_scores(model: onnx.ModelProto, domain: DomainModel) -> onnx.ModelProto:
    """`model` with outputs `domain_score_<side>` f64[B] appended (the part outputs stay)."""
    existing = {o.name for o in model.graph.output}
    if any(name in existing for name in SCORE_KEYS.values()):
        raise ValueError("the graph already has domain score outputs")
    missing = [name for name in domain.widths() if name not in existing]
    if missing:
        raise ValueError(f"the graph lacks the domain parts {missing}")
    b = _Builder()
    scores = _side_scores(b, domain)
    batch = onnx.TensorShapeProto.Dimension()
    batch.CopyFrom(model.graph.output[0].type.tensor_type.shape.dim[0])  # the graph's batch axis
    outputs = []
    for i, side in enumerate(domain.plan.sides):
        index = b.constant(f"{side}/index", np.asarray(i, dtype=np.int64))
        b.nodes.append(helper.make_node("Gather", [scores, index], [SCORE_KEYS[side]], axis=1))
        info = helper.make_tensor_value_info(SCORE_KEYS[side], TensorProto.DOUBLE, [None])
        info.type.tensor_type.shape.dim[0].CopyFrom(batch)
        outputs.append(info)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.extend(b.nodes)
    out.graph.initializer.extend(b.constants)
    out.graph.output.extend(outputs)
    _check_early(out, set(domain.widths()) | set(SCORE_KEYS.values()))
    return out


def _check_early(model: onnx.ModelProto, check_outputs: set[str]) -> None:
    """List each node only the check needs right after the last node it reads from, in place;
    the answers' nodes keep their order (a valid order: nothing they need depends on the
    check). onnxruntime runs nodes in its own topological order, which the file's order only
    steers: on the MedPix student it now runs the early block's pools right after that block,
    then the token and pixel statistics and the narrow parts' Gemm, in the middle of the image
    backbone, and the embedding's part and the scoring's tail just before the heads (listed last
    in the file, before this, it ran the statistics and the embedding's part between the image
    backbone and the text branch). Measured, not derived: the served A/B in the README's
    "Cost" paragraph (faster at batch 1 in every run, unchanged at batch 8)."""
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
    ready = {"", *(i.name for i in model.graph.input), *(i.name for i in model.graph.initializer)}
    waiting = [i for i in range(len(nodes)) if i not in needed]
    order: list[int] = []

    def place_ready() -> None:  # one pass: the file's order is topological, so a check node's
        # check producers come before it in `waiting`
        for index in list(waiting):
            if all(name in ready for name in nodes[index].input):
                order.append(index)
                ready.update(nodes[index].output)
                waiting.remove(index)

    place_ready()
    for index in sorted(needed):
        order.append(index)
        ready.update(nodes[index].output)
        place_ready()
    if waiting:
        raise ValueError(f"{len(waiting)} check nodes read tensors nothing produces")
    del model.graph.node[:]
    model.graph.node.extend(nodes[i] for i in order)


def add_domain_scores_to_file(path: Path, domain: DomainModel) -> None:
    """Rewrite the graph file at `path` with the scores appended (in place)."""
    model = onnx.load(str(path))
    onnx.save(add_domain_scores(model, domain), str(path))
