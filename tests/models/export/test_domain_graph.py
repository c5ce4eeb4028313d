"""The domain check's scoring appended to a graph (`models.export.domain_graph`) gives the
numpy form's scores at several batch sizes, with and without low-rank parts, keeps every
output the graph had, lists each check node right after what it reads (not after every node
of the answers), and refuses a graph that lacks a part or already scores."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from app.contract.domain import SCORE_KEYS, DomainModel, PartModel, part_output
from models.export.domain_graph import add_domain_scores

CLASSES = 3


def _part(rng: np.random.Generator, width: int, rank: int) -> PartModel:
    basis = np.linalg.qr(rng.normal(size=(width, rank)))[0]
    residual = 5.0 if rank < width else 0.0
    weights = 1.0 / np.linspace(4.0, 0.5, rank) - residual
    means = rng.normal(size=(CLASSES, width)) * 3 + 10
    return PartModel(means, basis, weights, residual, 2.0 + rng.random())


# image embedding width, rank: full rank; low rank among the narrow parts (its squared norm
# by an indicator product); wide and low rank, scored by its own product (ReduceSumSquare)
SHAPES = {"full": (64, 64), "low": (64, 8), "wide": (160, 8)}


def _domain(rng: np.random.Generator, shape: str) -> DomainModel:
    low_rank = shape != "full"
    return DomainModel(
        {
            ("image", "embedding"): _part(rng, *SHAPES[shape]),
            ("image", "early"): _part(rng, 12, 12),
            ("text", "embedding"): _part(rng, 20, 5 if low_rank else 20),
            ("text", "input_stats"): _part(rng, 4, 4),
        }
    )


def _parts_graph(domain: DomainModel) -> onnx.ModelProto:
    """A graph whose input `x` [B, Σd], through a hidden tensor, is cut into the domain parts
    and gives one task output (its nodes in an exporter's order: the task's before the parts')."""
    widths = domain.widths()
    total = sum(widths.values())
    split = helper.make_tensor("split", TensorProto.INT64, [len(widths)], list(widths.values()))
    nodes = [
        helper.make_node("Identity", ["x"], ["hidden"]),
        helper.make_node("Softmax", ["hidden"], ["probs_task"], axis=1),
        helper.make_node("Split", ["hidden", "split"], list(widths), axis=1),
    ]
    outputs = [helper.make_tensor_value_info("probs_task", TensorProto.FLOAT, ["B", total])]
    outputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", w]) for n, w in widths.items()
    ]
    graph = helper.make_graph(
        nodes,
        "parts",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", total])],
        outputs,
        [split],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_graph_scores_equal_the_numpy_form(shape: str, batch: int) -> None:
    rng = np.random.default_rng(batch + 10 * len(shape))
    domain = _domain(rng, shape)
    model = add_domain_scores(_parts_graph(domain), domain)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = {
        part_output(*key): (m.means[1] + rng.normal(size=(batch, m.width)) * 3).astype(np.float32)
        for key, m in domain.parts.items()
    }
    x = np.concatenate(list(values.values()), axis=1)
    names = [o.name for o in session.get_outputs()]
    assert names[: 1 + len(values)] == ["probs_task", *values]  # the graph's outputs kept
    # the check's nodes (the Split, the scoring) are listed as soon as `hidden` exists, before
    # the answers' Softmax
    ops = [n.op_type for n in model.graph.node]
    assert ops[:2] == ["Identity", "Split"] and ops[-1] == "Softmax" and len(ops) > 10
    out = dict(zip(names, session.run(None, {"x": x}), strict=True))
    want = domain.scores(values)
    assert float(np.max(want["image"])) > 1.0  # some rows are out of domain, some scores large
    for side, key in SCORE_KEYS.items():
        assert out[key].dtype == np.float64 and out[key].shape == (batch,)
        np.testing.assert_allclose(out[key], want[side], rtol=1e-5)  # float32 arithmetic


def test_refuses_a_graph_without_a_part_or_with_scores() -> None:
    domain = _domain(np.random.default_rng(0), "low")
    graph = _parts_graph(domain)
    scored = add_domain_scores(graph, domain)
    with pytest.raises(ValueError, match="already has domain score outputs"):
        add_domain_scores(scored, domain)
    del graph.graph.output[-1]  # text input_stats
    with pytest.raises(ValueError, match="lacks the domain parts"):
        add_domain_scores(graph, domain)
