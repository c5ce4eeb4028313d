"""Recovering a checkpoint from a bundle's graph: a ResNet student (batch norms folded into its
Convs by the exporter, Linear weights transposed) comes back with the graph's probabilities and
its own logits; so does a seed ensemble with the image vote; a bundle whose graph and manifest
disagree is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from app.contract.text import TextEncoder
from models.checkpoint import load_checkpoint, load_servable, save_checkpoint
from models.config import ModelConfig
from models.ensemble import SeedEnsemble
from models.export.bundle import ExportOptions, export_bundle
from models.export.recover import RecoveryError, recover
from models.multitask import MultiTaskModel
from tests.models.export.conftest import IMAGE_SIZE, MAX_LENGTH, checkpoint_extra


def _resnet_student(vocab_size: int) -> MultiTaskModel:
    torch.manual_seed(3)
    cfg = ModelConfig(
        vision={
            "type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
            "layer_type": "basic",
        },
        text={
            "type": "bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 32, "max_position_embeddings": MAX_LENGTH,
        },
        fusion_dim=16, fusion_type="cross_attention", fusion_heads=2, fusion_layers=1,
        num_classes=(2, 5), text_vocab_size=vocab_size,
    )  # fmt: skip
    model = MultiTaskModel(cfg).eval()
    with torch.no_grad():
        # trained weights, not init values: zero biases would be identical constants, which the
        # exporter stores once, so a graph cannot say whose they were (recovery refuses those)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        # batch norms with real statistics, so folding them changes the Convs
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


@pytest.fixture(scope="module")
def resnet_case(
    tmp_path_factory: pytest.TempPathFactory, medpix_tokenizer: Tokenizer, medpix_root: Path
) -> tuple[MultiTaskModel, Path]:
    """The model and its bundle, exported by the real exporter on 32 real dev samples."""
    root = tmp_path_factory.mktemp("recover")
    model = _resnet_student(medpix_tokenizer.get_vocab_size())
    checkpoint = root / "best.pt"
    save_checkpoint(checkpoint, model, model.cfg, checkpoint_extra(medpix_tokenizer, medpix_root))
    export_bundle(checkpoint, root / "resnet-student", ExportOptions(threads=1, dev_limit=32))
    return model, root / "resnet-student"


def test_resnet_student_comes_back_from_its_graph(
    resnet_case: tuple[MultiTaskModel, Path], tmp_path: Path, medpix_tokenizer: Tokenizer
) -> None:
    model, bundle = resnet_case
    assert recover(bundle, tmp_path / "recovered.pt") <= 1e-5
    recovered, _cfg, meta = load_checkpoint(tmp_path / "recovered.pt")
    assert meta.tokenizer_json == medpix_tokenizer.to_str()
    assert meta.labels is not None and list(meta.labels) == ["modality", "location"]
    provenance = (meta.training_config or {})["provenance"]["recovered_from"]
    assert provenance["bundle"] == json.loads((bundle / "manifest.json").read_text())["name"]
    pixels = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    ids = torch.randint(5, medpix_tokenizer.get_vocab_size(), (3, MAX_LENGTH))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    with torch.no_grad():
        want, got = model(pixels, ids, mask), recovered.eval()(pixels, ids, mask)
    for key in ("logits_modality", "logits_location"):
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-4)


def test_a_graph_that_disagrees_with_its_manifest_is_refused(
    resnet_case: tuple[MultiTaskModel, Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "edited"
    shutil.copytree(resnet_case[1], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tasks"][0]["temperature"] *= 3.0  # the graph divides by the old temperature
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RecoveryError, match="differs from the graph"):
        recover(bundle, tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


def test_a_seed_ensemble_with_the_image_vote_comes_back(
    tmp_path: Path, medpix_tokenizer: Tokenizer, medpix_root: Path
) -> None:
    """The wound student's layout: members under `members.<i>.`, each answering with its fused
    and its empty-text opinion; the empty-text features the exporter folded into constants are
    computed again from the recovered text branches, and the graph's answers come back."""
    torch.manual_seed(5)
    cfg = _resnet_student(medpix_tokenizer.get_vocab_size()).cfg
    ensemble = SeedEnsemble(cfg, 2, image_vote=True).eval()
    with torch.no_grad():
        for parameter in ensemble.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    encoded = TextEncoder(medpix_tokenizer, MAX_LENGTH).encode([""])
    ensemble.set_empty_text(encoded.input_ids[0][: int(encoded.attention_mask[0].sum())].tolist())
    extra = checkpoint_extra(medpix_tokenizer, medpix_root)
    extra["training_config"]["ensemble"] = {"seeds": [1, 2], "image_vote": True}
    save_checkpoint(tmp_path / "best.pt", ensemble, cfg, extra)
    bundle = tmp_path / "ensemble"
    export_bundle(tmp_path / "best.pt", bundle, ExportOptions(threads=1, dev_limit=32))
    assert recover(bundle, tmp_path / "recovered.pt") <= 1e-5
    recovered, _cfg, _meta = load_servable(tmp_path / "recovered.pt")
    assert isinstance(recovered, SeedEnsemble) and recovered.image_vote and recovered.size == 2
    torch.testing.assert_close(
        recovered.empty_text_proj, ensemble.empty_text_proj, atol=1e-5, rtol=0
    )
