"""Recover a torch checkpoint from an exported bundle whose checkpoint is gone, so the bundle
can be exported again with what later exports add (a dynamic text axis, int8 word tables)
without retraining: the weights, labels, tokenizer and training config all come from the bundle.

The graph keeps every weight under its module's name, except what the exporter rewrote:

- a Conv followed by batch norm is one Conv with the norm folded into `<conv>.weight` and
  `<conv>.weight_bias`; the recovered norm is the identity plus that bias (mean 0, variance
  1 - eps, scale 1), so the same Conv comes out when it is folded again;
- a Linear run as MatMul + Add keeps its bias's name; its weight is an anonymous transposed
  constant, found by following the MatMul's output to the Add that reads the bias.

The exporter stores bit-identical constants once, so untrained zero biases cannot be told
apart (refused with the weight's name); trained weights never collide. A weight the graph
lacks is one no output reads (BERT's unused pooler): it is zeroed. The
recovered model must reproduce the graph's probabilities, or nothing is written.

    python -m models.export.recover exported/medpix-student /tmp/medpix-student.pt
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from app.contract.graph import INPUT_NAMES, graph_feeds
from app.contract.manifest import MODEL_FILE, TOKENIZER_FILE, Manifest
from app.contract.session import open_session
from app.contract.text import TextEncoder
from models.checkpoint import save_checkpoint
from models.config import ModelConfig
from models.ensemble import SeedEnsemble
from models.export.onnx_export import CalibratedProbabilities
from models.multitask import MultiTaskModel
from models.servable import ServableModel

GRAPH_PREFIX = "model."  # CalibratedProbabilities holds the MultiTaskModel as `.model`
FOLDED_BIAS = ".weight_bias"  # the exporter names a folded Conv bias after its weight
MAX_PROB_DIFFERENCE = 1e-4


class RecoveryError(ValueError):
    """The graph does not determine every weight of the model its manifest describes."""


def _linear_weights(
    graph: onnx.GraphProto, arrays: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """`<linear>.weight` for each MatMul whose constant right operand feeds an Add of a
    named `<linear>.bias` (MatMul computes x @ W.T, so the constant is the transposed weight)."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    weights = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays:
            continue
        for add in readers.get(node.output[0], []):
            bias = next((i for i in add.input if i.endswith(".bias") and i in arrays), None)
            if add.op_type == "Add" and bias is not None:
                weights[bias.removeprefix(GRAPH_PREFIX)[: -len("bias")] + "weight"] = arrays[
                    node.input[1]
                ].T
    return weights


def _norm_of(conv_key: str) -> str:
    """HF ResNet: `<layer>.convolution.weight` is normalised by `<layer>.normalization`."""
    return conv_key.replace(".convolution.weight", ".normalization")


def recover_state_dict(graph: onnx.ModelProto, model: ServableModel) -> dict[str, torch.Tensor]:
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    found: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if name.startswith(GRAPH_PREFIX) and not name.endswith(FOLDED_BIAS):
            found[name.removeprefix(GRAPH_PREFIX)] = array
    for name, bias in arrays.items():
        if not name.endswith(FOLDED_BIAS):
            continue
        norm = _norm_of(name.removeprefix(GRAPH_PREFIX).removesuffix("_bias"))
        module = model.get_submodule(norm)
        eps = float(getattr(module, "eps", 1e-5))
        found[f"{norm}.weight"] = np.ones_like(bias)
        found[f"{norm}.bias"] = bias
        found[f"{norm}.running_mean"] = np.zeros_like(bias)
        found[f"{norm}.running_var"] = np.full_like(bias, 1.0 - eps)
    found.update(_linear_weights(graph.graph, arrays))

    state = model.state_dict()
    recovered = {}
    for key, current in state.items():
        if key not in found:  # no output reads it (e.g. BERT's pooler): zeros, parity decides
            recovered[key] = torch.zeros_like(current)
            continue
        value = torch.from_numpy(np.array(found[key], dtype=np.float32, copy=True)).to(
            current.dtype
        )
        if value.shape != current.shape:
            raise RecoveryError(
                f"{key}: graph has {tuple(value.shape)}, model {tuple(current.shape)}"
            )
        recovered[key] = value
    return recovered


def _probe(manifest: Manifest, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random pixels and token ids with mixed text lengths (padding masked), batch of 4."""
    rng = np.random.default_rng(seed)
    size, length = manifest.preprocessing.image_size, manifest.preprocessing.max_text_length
    ids = rng.integers(5, vocab, size=(4, length), dtype=np.int64)
    mask = np.zeros((4, length), dtype=np.int64)
    for row, used in enumerate((length, length // 2, 7, 2)):
        mask[row, :used] = 1
        ids[row, used:] = 0
    pixels = rng.uniform(-1, 1, size=(4, 3, size, size)).astype(np.float32)
    return graph_feeds(pixels, ids, mask)


def check_against_graph(bundle: Path, manifest: Manifest, model: ServableModel) -> float:
    """Largest |probability difference| between the bundle's graph and the recovered model."""
    wrapper = CalibratedProbabilities(
        model, [t.name for t in manifest.tasks], [t.temperature for t in manifest.tasks]
    )
    embeddings = model.text.get_input_embeddings()
    if not isinstance(embeddings, torch.nn.Embedding):
        raise RecoveryError(f"unexpected text embedding {type(embeddings).__name__}")
    feeds = _probe(manifest, embeddings.num_embeddings)
    session = open_session(bundle / MODEL_FILE)  # as served: same options, CPU fallback
    expected = dict(
        zip(wrapper.output_names, session.run(wrapper.output_names, feeds), strict=True)
    )
    with torch.no_grad():
        got = wrapper(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES))
    return max(
        float(np.max(np.abs(value.numpy() - expected[name])))
        for name, value in zip(wrapper.output_names, got, strict=True)
        if name in expected and not name.startswith("modality")
    )


def build_model(bundle: Path, manifest: Manifest, cfg: ModelConfig) -> ServableModel:
    """The untrained model the manifest describes: a seed ensemble when its training config has
    an `ensemble` section (members under `members.<i>.`, as the joined checkpoint has them)."""
    if (manifest.training_config or {}).get("late_fusion"):
        raise RecoveryError(
            f"{bundle}: a late-fused bundle (network + bag-of-words text model) is not "
            "recovered from its graph (the fusion weights are folded into it); keep its checkpoint"
        )
    ensemble = (manifest.training_config or {}).get("ensemble")
    if not ensemble:
        return MultiTaskModel(cfg).eval()
    size = len(ensemble.get("seeds") or [])
    return SeedEnsemble(cfg, size, bool(ensemble.get("image_vote"))).eval()


def _fallback_ids(bundle: Path, manifest: Manifest) -> list[int]:
    """The empty-text fallback as the bundle's tokenizer encodes it, without padding: the image
    vote's second text (its projected features are folded into the graph, so they are computed
    again from the recovered text branch, as the join computed them)."""
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, pre.max_text_length, pre.empty_text)
    encoded = encoder.encode([""])
    length = int(encoded.attention_mask[0].sum())
    return [int(i) for i in encoded.input_ids[0][:length]]


def recover(bundle: Path, out: Path) -> float:
    """Write `out` from `bundle`; return the parity reached (max |Δprob|)."""
    manifest = Manifest.load(bundle)
    model_config = (manifest.model_extra or {}).get("model_config")
    if not isinstance(model_config, dict):
        raise RecoveryError(f"{bundle}: the manifest has no model_config")
    cfg = ModelConfig.from_dict(model_config)
    model = build_model(bundle, manifest, cfg)
    graph = onnx.load(str(bundle / MODEL_FILE))
    model.load_state_dict(recover_state_dict(graph, model))
    if isinstance(model, SeedEnsemble) and model.image_vote:
        model.set_empty_text(_fallback_ids(bundle, manifest))
    difference = check_against_graph(bundle, manifest, model)
    if difference > MAX_PROB_DIFFERENCE:
        raise RecoveryError(f"recovered model differs from the graph by {difference:.2e}")
    training_config: dict[str, Any] = dict(manifest.training_config or {})
    digest = hashlib.sha256((bundle / MODEL_FILE).read_bytes()).hexdigest()
    training_config["provenance"] = {
        **dict(training_config.get("provenance") or {}),
        "recovered_from": {"bundle": manifest.name, "model_sha256": digest},
    }
    metadata = {
        "task_set": manifest.task_set,
        "role": manifest.role,
        "max_text_length": manifest.preprocessing.max_text_length,
        "tokenizer_json": (bundle / TOKENIZER_FILE).read_text(encoding="utf-8"),
        "labels": {t.name: list(t.labels) for t in manifest.tasks},
        "training_config": training_config,
        "metrics": (manifest.metrics or {}).get("checkpoint"),
    }
    save_checkpoint(out, model, cfg, metadata)
    return difference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.export.recover", description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path, help="checkpoint to write (.pt)")
    args = parser.parse_args(argv)
    difference = recover(args.bundle, args.out)
    print(f"wrote {args.out}: probabilities match {args.bundle}'s graph within {difference:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
