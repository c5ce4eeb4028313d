"""Trained model → ONNX graph that outputs calibrated probabilities (the bundle's model.onnx).

Exporter choice — measured here with torch 2.13.0, transformers 5.24, onnxruntime 1.32 on
HF ViTModel / MobileViTModel / BertModel (tiny custom configs, built offline) with all eight
fusions (nn.MultiheadAttention inside cross_attention, transformer_concat,
energy_aware_adaptive, shomr), text length L fixed, graphs run at B = 1, 7, 32 against eager:

- dynamo (``torch.onnx.export(dynamo=True)`` + ``dynamic_shapes`` with a ``torch.export.Dim``
  on axis 0): every fusion × {ViT, MobileViT} passes, max |Δprob| ≤ 2e-7. Export takes
  2.5–5 s for tiny ViT models and 12–25 s with MobileViT on this CPU.
  Traps: (1) with an example batch of 1 the exported graph is *silently* B=1 static even when
  the Dim is declared (no error, no warning) → we trace with an example batch of 2 and
  assert that every input/output has a symbolic axis 0; (2) by default the weights go to a
  separate ``.onnx.data`` file → the bundle needs one self-contained file, so we save the
  ModelProto ourselves without external data.
- legacy TorchScript (``dynamo=False`` + ``dynamic_axes``): also passes (≤ 2e-7), 5–10×
  faster to export, but raises a DeprecationWarning (removed in a future torch) and emits
  TracerWarnings (tensor → Python bool/float conversions in transformers' mask code, baked
  into the trace). The sequence length is fixed in the trace (we pad to the manifest's L
  anyway); an all-ones example attention mask still gave correct results on padded inputs.
  On the student-sized graph its ORT latency was no better than dynamo's.

We ship dynamo (the maintained exporter, an optimised graph) with the two guards above.
The sequence axis is dynamic too (a second Dim, 2..max_length): the service cuts each batch to
its longest text rounded up to 16 tokens instead of the manifest's maximum; measured here at
L = 2, 16, 48, 128 with B = 1..32, max |Δprob| ≤ 1e-7 against eager.
Energy-aware and SHoMR routing export as ``where`` selections (argmax at eval), so dynamic
batches need no data-dependent control flow.

The exported graph wraps the model in ``CalibratedProbabilities``: ``probs_<task> =
softmax(logits / T_task)`` with each head's fitted temperature baked in as a constant, plus
``modality_weights`` (B, 2: image, text) when the fusion has them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from app.contract.graph import INPUT_NAMES, MODALITY_WEIGHTS_OUTPUT, prob_output
from app.contract.manifest import TaskSpec
from models.export.domain_features import DomainFeatures
from models.multitask import EMBEDDING_KEYS, MODALITY_WEIGHTS_KEY
from models.servable import ServableModel

OPSET = 18
LOGIT_KEYS = ("logits_modality", "logits_location")  # task 1, task 2 (research head order)
EXAMPLE_BATCH = 2  # ≥ 2: an example batch of 1 makes the dynamo exporter fix B = 1


# Loggers that report harmless exporter chatter (torchvision ops absent, folding skipped).
_NOISY_LOGGERS = ("torch.onnx._internal.exporter._registration", "onnxscript.optimizer")


class ExportError(RuntimeError):
    """The exported graph does not honour the bundle contract."""


class CalibratedProbabilities(nn.Module):
    """model → (probs_<task1>, probs_<task2>[, modality_weights]) with temperatures applied;
    with `domain`, also the domain check's parts (`DomainFeatures.output_names`: each side's
    pre-fusion embedding and input statistics, and the image backbone's early block)."""

    def __init__(
        self,
        model: ServableModel,
        task_names: Sequence[str],
        temperatures: Sequence[float],
        domain: DomainFeatures | None = None,
    ) -> None:
        super().__init__()
        if len(task_names) != 2 or len(temperatures) != 2:
            raise ValueError("exactly two tasks and two temperatures are expected")
        if any(t <= 0 for t in temperatures):
            raise ValueError(f"temperatures must be > 0, got {list(temperatures)}")
        self.model = model.eval()
        self.task_names = tuple(task_names)
        self.temperatures = tuple(float(t) for t in temperatures)  # graph constants
        self.with_weights = bool(model.has_modality_weights)
        self.domain = domain
        self.train(False)

    @property
    def output_names(self) -> list[str]:
        names = [prob_output(t) for t in self.task_names]
        if self.with_weights:
            names.append(MODALITY_WEIGHTS_OUTPUT)
        return names + self.domain.output_names if self.domain is not None else names

    def task_specs(self, labels: dict[str, list[str]]) -> list[TaskSpec]:
        return [
            TaskSpec(
                name=t,
                labels=list(labels[t]),
                output=prob_output(t),
                temperature=self.temperatures[i],
            )
            for i, t in enumerate(self.task_names)
        ]

    def forward(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, ...]:
        out = self.model(pixel_values, input_ids, attention_mask)
        probs = [
            torch.softmax(out[key] / self.temperatures[i], dim=-1)
            for i, key in enumerate(LOGIT_KEYS)
        ]
        if self.with_weights:
            probs.append(out[MODALITY_WEIGHTS_KEY])
        if self.domain is not None:  # PART_KEYS order: image parts, then text parts
            probs += [out[EMBEDDING_KEYS[0]], self.domain.image(pixel_values)]
            if self.domain.early is not None:
                probs.append(self.domain.early())
            probs += [out[EMBEDDING_KEYS[1]], self.domain.text(input_ids, attention_mask)]
        return tuple(probs)


def example_inputs(
    batch: int, image_size: int, max_length: int, vocab_size: int, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Random but valid inputs (ids in vocab, right padding) for tracing."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.rand(batch, 3, image_size, image_size, generator=gen) * 2 - 1
    ids = torch.randint(5, max(vocab_size, 6), (batch, max_length), generator=gen)
    mask = torch.ones(batch, max_length, dtype=torch.int64)
    for row in range(batch):
        length = max(2, max_length - 1 - row)
        mask[row, length:] = 0
        ids[row, length:] = 0
    return pixels, ids, mask


def export_onnx(
    wrapper: CalibratedProbabilities,
    path: str | Path,
    image_size: int,
    max_length: int,
    vocab_size: int,
) -> onnx.ModelProto:
    """Export with the dynamo exporter, dynamic batch, one self-contained file; checked."""
    example = example_inputs(EXAMPLE_BATCH, image_size, max_length, vocab_size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    # [CLS] + [SEP] make every text ≥ 2 tokens; position embeddings cap it at max_length
    seq = torch.export.Dim("seq", min=2, max=max_length)
    pixels, *texts = INPUT_NAMES
    dynamic = {pixels: {0: batch}, **{name: {0: batch, 1: seq} for name in texts}}
    with _quiet():
        program = torch.onnx.export(
            wrapper.eval(),
            example,
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=wrapper.output_names,
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    check_graph_contract(proto, wrapper.output_names, image_size)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    onnx.checker.check_model(str(path))
    return proto


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress prints, warnings and chatty loggers."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def check_graph_contract(
    proto: onnx.ModelProto, output_names: Sequence[str], image_size: int
) -> None:
    """Inputs/outputs named and shaped as docs/design.md §3 says: symbolic batch axis everywhere and
    a symbolic sequence axis (≤ max_length) on the text inputs."""
    inputs = {v.name: _dims(v) for v in proto.graph.input}
    outputs = {v.name: _dims(v) for v in proto.graph.output}
    pixels, *texts = INPUT_NAMES
    expected_inputs = {pixels: [3, image_size, image_size]}
    problems = []
    if list(inputs) != list(INPUT_NAMES):
        problems.append(f"inputs are {list(inputs)}, expected {list(INPUT_NAMES)}")
    if list(outputs) != list(output_names):
        problems.append(f"outputs are {list(outputs)}, expected {list(output_names)}")
    for name, dims in [*inputs.items(), *outputs.items()]:
        if not dims or not isinstance(dims[0], str):
            problems.append(f"{name}: batch axis is not dynamic (shape {dims})")
    for name, rest in expected_inputs.items():
        if name in inputs and inputs[name][1:] != rest:
            problems.append(f"{name}: shape {inputs[name]}, expected [batch, {rest}]")
    for name in texts:
        dims = inputs.get(name, [])
        if len(dims) != 2 or not isinstance(dims[1], str):
            problems.append(f"{name}: sequence axis is not dynamic (shape {dims})")
    if problems:
        raise ExportError("exported graph breaks the bundle contract: " + "; ".join(problems))
