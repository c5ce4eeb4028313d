"""SeedEnsemble answers with the mean of its members' probabilities and round-trips through
our checkpoint format; single-model readers refuse it by name."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from models.checkpoint import load_checkpoint, load_servable, save_checkpoint
from models.checkpoint_metadata import CheckpointMetadata
from models.ensemble import SeedEnsemble
from models.export.onnx_export import CalibratedProbabilities, export_onnx
from models.export.quantize import quantize_int8
from models.multitask import LOGIT_KEYS, MODALITY_WEIGHTS_KEY, MultiTaskModel
from tests.models.tiny_configs import tiny_batch, tiny_config

EMPTY_IDS = [1, 17, 33, 2]  # stands for "[CLS] no description available [SEP]"


def _ensemble(size: int = 3, image_vote: bool = False, fusion_dim: int = 16) -> SeedEnsemble:
    torch.manual_seed(0)
    cfg = tiny_config(fusion_type="cross_attention", fusion_dim=fusion_dim)
    ensemble = SeedEnsemble(cfg, size, image_vote).eval()
    if image_vote:
        ensemble.set_empty_text(EMPTY_IDS)
    return ensemble


def _image_alone(member: MultiTaskModel, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    ids = torch.tensor([EMPTY_IDS] * len(pixels))
    return member(pixels, ids, torch.ones_like(ids))


def test_output_is_the_log_of_the_members_mean_probability() -> None:
    ensemble = _ensemble()
    inputs = tiny_batch(batch=4)
    with torch.no_grad():
        out = ensemble(*inputs)
        members = [m(*inputs) for m in ensemble.members]
    for key in LOGIT_KEYS:
        mean = torch.stack([torch.softmax(o[key], -1) for o in members]).mean(0)
        torch.testing.assert_close(torch.softmax(out[key], -1), mean)
        torch.testing.assert_close(out[key].exp().sum(-1), torch.ones(4))
        # members differ, so the mean is not any one member's answer
        assert not torch.allclose(mean, torch.softmax(members[0][key], -1))
    weights = torch.stack([o[MODALITY_WEIGHTS_KEY] for o in members]).mean(0)
    torch.testing.assert_close(out[MODALITY_WEIGHTS_KEY], weights)


def test_one_member_is_not_an_ensemble() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        SeedEnsemble(tiny_config(), 1)


def test_checkpoint_round_trip_and_single_model_readers_refuse(tmp_path: Path) -> None:
    ensemble = _ensemble(2)
    meta = CheckpointMetadata(task_set="medpix", role="student", max_text_length=12)
    path = tmp_path / "best.pt"
    save_checkpoint(path, ensemble, ensemble.cfg, meta)
    assert torch.load(path, weights_only=True)["ensemble"] == {"size": 2, "image_vote": False}

    loaded, cfg, loaded_meta = load_servable(path)
    assert isinstance(loaded, SeedEnsemble) and loaded.size == 2
    assert cfg.to_dict() == ensemble.cfg.to_dict() and loaded_meta.role == "student"
    inputs = tiny_batch(batch=2)
    with torch.no_grad():
        for key in LOGIT_KEYS:
            torch.testing.assert_close(loaded(*inputs)[key], ensemble(*inputs)[key])
    with pytest.raises(ValueError, match="seed ensemble of 2 members"):
        load_checkpoint(path)


def test_image_vote_is_the_geometric_mean_with_the_image_alone() -> None:
    ensemble = _ensemble(2, image_vote=True)
    assert ensemble.image_vote
    pixels, ids, mask = tiny_batch(batch=3)
    with torch.no_grad():
        out = ensemble(pixels, ids, mask)
        fused = [m(pixels, ids, mask) for m in ensemble.members]
        alone = [_image_alone(m, pixels) for m in ensemble.networks]
    for key in LOGIT_KEYS:
        votes = [
            torch.softmax((torch.log_softmax(f[key], -1) + torch.log_softmax(a[key], -1)) / 2, -1)
            for f, a in zip(fused, alone, strict=True)
        ]
        torch.testing.assert_close(torch.softmax(out[key], -1), torch.stack(votes).mean(0))
        plain = torch.stack([torch.softmax(f[key], -1) for f in fused]).mean(0)
        assert (torch.softmax(out[key], -1) - plain).abs().max() > 1e-6  # the vote moved it


def test_an_image_sent_alone_is_answered_as_without_the_vote(tmp_path: Path) -> None:
    voting, plain = _ensemble(2, image_vote=True), _ensemble(2)
    members = {k: v for k, v in voting.state_dict().items() if k != "empty_text_proj"}
    plain.load_state_dict(members)  # the vote adds no weights, only the fallback's features
    pixels = tiny_batch(batch=3)[0]
    ids = torch.tensor([EMPTY_IDS] * 3)
    with torch.no_grad():
        for key in LOGIT_KEYS:
            torch.testing.assert_close(
                voting(pixels, ids, torch.ones_like(ids))[key],
                plain(pixels, ids, torch.ones_like(ids))[key],
            )
    path = tmp_path / "best.pt"
    meta = CheckpointMetadata(task_set="wound", role="student", max_text_length=12)
    save_checkpoint(path, voting, voting.cfg, meta)
    loaded, _cfg, _meta = load_servable(path)
    assert isinstance(loaded, SeedEnsemble) and loaded.image_vote
    torch.testing.assert_close(loaded.empty_text_proj, voting.empty_text_proj)
    assert voting.empty_text_proj.abs().sum() > 0


def test_the_vote_graph_uses_each_weight_once_so_int8_quantizes_it(tmp_path: Path) -> None:
    """A weight read by two MatMuls is exported behind a Transpose, which dynamic int8 skips;
    the vote batches both opinions through one fusion pass so that does not happen. (Fusion
    width 96, the students': the exporter folds the Transpose of a smaller weight away.)"""
    ensemble = _ensemble(2, image_vote=True, fusion_dim=96)
    wrapper = CalibratedProbabilities(ensemble, ["modality", "location"], [1.0, 1.0])
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    export_onnx(wrapper, fp32, image_size=32, max_length=12, vocab_size=120)
    quantize_int8(fp32, int8)
    model = onnx.load(str(int8))
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    produced_by = {out: node for node in model.graph.node for out in node.output}

    def reads_float_weight(name: str) -> bool:
        node = produced_by.get(name)
        if node is not None and node.op_type == "Transpose":
            return reads_float_weight(node.input[0])
        return name in floats

    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    assert not [n.name for n in matmuls if reads_float_weight(n.input[1])]
    assert sum(n.op_type == "MatMulInteger" for n in model.graph.node) > 0
