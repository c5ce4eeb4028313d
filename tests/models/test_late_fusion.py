"""LateFusionModel: each task is the weighted sum of its sources' log-probabilities; with no
text it is the network's image-only answer; it round-trips through checkpoints and ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.checkpoint import load_checkpoint, load_servable, save_checkpoint
from models.checkpoint_metadata import CheckpointMetadata
from models.export.onnx_export import CalibratedProbabilities, export_onnx
from models.late_fusion import LateFusionModel
from models.multitask import LOGIT_KEYS, MODALITY_WEIGHTS_KEY
from tests.models.tiny_configs import tiny_batch, tiny_config

EMPTY_IDS = [1, 17, 33, 2]


def _model(weights: list[list[float]]) -> LateFusionModel:
    torch.manual_seed(0)
    model = LateFusionModel(tiny_config(fusion_type="cross_attention"), 120).eval()
    for head in model.bow.heads:  # a trained-looking text model
        torch.nn.init.normal_(head.weight, std=3.0)
    model.set_empty_text(EMPTY_IDS)
    model.set_task_weights(weights)
    return model


def _fallback(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([EMPTY_IDS] * batch)
    return ids, torch.ones_like(ids)


def test_each_task_is_the_weighted_sum_of_its_sources() -> None:
    model = _model([[0.0, 1.0, 1.0], [0.5, 0.0, 2.0]])
    pixels, ids, mask = tiny_batch(batch=3)
    with torch.no_grad():
        out = model(pixels, ids, mask)
        fused = model.network(pixels, ids, mask)
        alone = model.network(pixels, *_fallback(3))
        bag, present = model.bow(ids, mask)
    assert present.all()
    for task, key in enumerate(LOGIT_KEYS):
        w = model.task_weights[task]
        want = (
            w[0] * torch.log_softmax(fused[key], -1)
            + w[1] * torch.log_softmax(alone[key], -1)
            + w[2] * bag[task]
        )
        torch.testing.assert_close(out[key], torch.log_softmax(want, -1))
    weights = out[MODALITY_WEIGHTS_KEY]
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights[:, 1] > 0).all() and (weights[:, 0] > 0).all()


def test_without_text_every_task_is_the_image_only_answer() -> None:
    model = _model([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    pixels = tiny_batch(batch=2)[0]
    with torch.no_grad():
        out = model(pixels, *_fallback(2))
        alone = model.network(pixels, *_fallback(2))
    for key in LOGIT_KEYS:
        torch.testing.assert_close(out[key], torch.log_softmax(alone[key], -1))
    torch.testing.assert_close(out[MODALITY_WEIGHTS_KEY], torch.tensor([[1.0, 0.0]] * 2))


def test_weights_are_validated() -> None:
    model = _model([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="needs a source"):
        model.set_task_weights([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=">= 0"):
        model.set_task_weights([[-1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_checkpoint_round_trip_and_single_model_readers_refuse(tmp_path: Path) -> None:
    model = _model([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    path = tmp_path / "best.pt"
    meta = CheckpointMetadata(task_set="wound", role="student", max_text_length=12)
    save_checkpoint(path, model, model.cfg, meta)
    loaded, _cfg, _meta = load_servable(path)
    assert isinstance(loaded, LateFusionModel)
    inputs = tiny_batch(batch=2)
    with torch.no_grad():
        for key in LOGIT_KEYS:
            torch.testing.assert_close(loaded(*inputs)[key], model(*inputs)[key])
    with pytest.raises(ValueError, match="late-fused"):
        load_checkpoint(path)


def test_onnx_graph_matches_torch_at_several_batch_sizes(tmp_path: Path) -> None:
    model = _model([[0.0, 1.0, 1.0], [0.5, 0.5, 1.0]])
    wrapper = CalibratedProbabilities(model, ["modality", "location"], [1.3, 0.8])
    path = tmp_path / "model.onnx"
    export_onnx(wrapper, path, image_size=32, max_length=12, vocab_size=120)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 5):
        pixels, ids, mask = tiny_batch(batch=batch, seed=batch)
        if batch > 1:
            ids[1], mask[1] = torch.tensor(EMPTY_IDS + [0] * 8), torch.tensor([1] * 4 + [0] * 8)
        feeds = {
            "pixel_values": pixels.numpy(),
            "input_ids": ids.numpy(),
            "attention_mask": mask.numpy(),
        }
        got = session.run(wrapper.output_names, feeds)
        with torch.no_grad():
            want = wrapper(pixels, ids, mask)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), atol=1e-5)
