"""The bundle graph's signature (docs/design.md §3): the one place naming its inputs and outputs.

Export writes graphs with these names, and serve, verify, bench and the OIP v2 protocol read
them; keeping the names here (torch-free) means the two sides cannot drift.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from app.contract.domain import SCORE_KEYS
from app.contract.manifest import Manifest

INPUT_NAMES = ("pixel_values", "input_ids", "attention_mask")  # f32[B,3,H,W], i64[B,L] ×2
MODALITY_WEIGHTS_OUTPUT = "modality_weights"  # f32[B,2]: image, text (fusions that have them)


def prob_output(task: str) -> str:
    """Graph output holding one task's calibrated probabilities, f32[B, classes]."""
    return f"probs_{task}"


def graph_feeds(
    pixel_values: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Batched arrays → the feed dict, in the contract's dtypes and C order."""
    values = (
        np.ascontiguousarray(pixel_values, dtype=np.float32),
        np.ascontiguousarray(input_ids, dtype=np.int64),
        np.ascontiguousarray(attention_mask, dtype=np.int64),
    )
    return dict(zip(INPUT_NAMES, values, strict=True))


def output_widths(manifest: Manifest) -> dict[str, int]:
    """The outputs a bundle's graph must have (task probabilities, modality weights) → width."""
    widths = {task.output: len(task.labels) for task in manifest.tasks}
    if manifest.modality_weights_output:
        widths[manifest.modality_weights_output] = 2
    return widths


def domain_widths(manifest: Manifest) -> dict[str, int]:
    """The domain check's graph outputs (each side's embedding and input statistics) → width;
    empty when the bundle has no domain check."""
    return dict(manifest.domain.outputs) if manifest.domain is not None else {}


def served_domain_outputs(manifest: Manifest) -> list[str]:
    """What serving fetches for the domain check: the graph's per-side scores when it computes
    them, else the parts it scores itself; empty without a check."""
    if manifest.domain is not None and manifest.domain.scores_in_graph:
        return list(SCORE_KEYS.values())  # f64[B] each
    return list(domain_widths(manifest))


def signature_problems(session: ort.InferenceSession, manifest: Manifest) -> list[str]:
    """How the session's inputs/outputs break the contract and the manifest (empty: none)."""
    problems = []
    inputs = [i.name for i in session.get_inputs()]
    if inputs != list(INPUT_NAMES):
        problems.append(f"inputs {inputs}, expected {list(INPUT_NAMES)}")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    for name, width in (output_widths(manifest) | domain_widths(manifest)).items():
        if name not in outputs:
            problems.append(f"output {name!r} named in the manifest is missing")
        elif outputs[name][-1] != width:
            problems.append(
                f"output {name!r} has shape {outputs[name]}, the manifest implies [batch, {width}]"
            )
    if manifest.domain is not None and manifest.domain.scores_in_graph:
        for name in SCORE_KEYS.values():
            if name not in outputs:
                problems.append(f"output {name!r} (the manifest says scores_in_graph) is missing")
            elif len(outputs[name]) != 1:
                problems.append(f"output {name!r} has shape {outputs[name]}, expected [batch]")
    return problems


def has_dynamic_text(session: ort.InferenceSession) -> bool:
    """True when input_ids' sequence axis is symbolic (bundles exported since variable-length
    text); older bundles fix it and must be fed the manifest's full length."""
    shape = next(i.shape for i in session.get_inputs() if i.name == "input_ids")
    return len(shape) == 2 and not isinstance(shape[1], int)
