"""Unimodal training views and losses: exactly the inputs the service builds when one is left
out (the empty-text fallback row; a black image)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.multitask import MultiTaskModel
from models.training.losses import LOGIT_KEYS, kd_loss
from models.training.teacher_bundle import CachedTeacherLogits
from models.training.tensors import Batch, SplitTensors
from models.training.unimodal import ImageOnlyTeacher, UnimodalLoss
from tests.models.tiny_configs import tiny_config

TINY_RESNET = {
    "type": "resnet",
    "embedding_size": 8,
    "hidden_sizes": [8, 16],
    "depths": [1, 1],
    "layer_type": "basic",
}
EMPTY_IDS = torch.tensor([[101, 7, 8, 9, 102, 0]])
EMPTY_MASK = (EMPTY_IDS != 0).to(torch.int64)


def _split(n: int = 5) -> SplitTensors:
    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 256, (n, 32, 32, 3)).astype(np.uint8)
    ids = torch.randint(10, 100, (n, 6), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[i % 2, i % 3] for i in range(n)])
    return SplitTensors(pixels, ids, torch.ones_like(ids), labels, (EMPTY_IDS, EMPTY_MASK))


def test_image_only_view_keeps_pixels_and_labels_and_feeds_the_empty_row() -> None:
    split = _split()
    view = split.image_only()
    assert view.pixels is split.pixels and view.labels is split.labels
    assert bool((view.input_ids == EMPTY_IDS).all()) and bool(
        (view.attention_mask == EMPTY_MASK).all()
    )
    assert len(list(view.batches(2))) == 3


def test_text_only_view_keeps_texts_and_blacks_out_every_pixel() -> None:
    split = _split()
    view = split.text_only()
    assert not view.pixels.any() and view.pixels.shape == split.pixels.shape
    assert view.input_ids is split.input_ids
    batch = next(view.batches(5))
    assert bool((batch.pixel_values == -1.0).all())  # what the service feeds for a black PNG


def test_unimodal_loss_equals_ce_of_the_two_served_ablations() -> None:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config(num_classes=(2, 3))).eval()  # eval: dropout off
    split = _split()
    batch = next(split.batches(5))
    labels = batch.labels
    loss_fn = UnimodalLoss(model, (EMPTY_IDS, EMPTY_MASK), image_size=32, weights=(0.5, 0.25))
    with torch.no_grad():
        out = model(batch.pixel_values, batch.input_ids, batch.attention_mask)
        got = loss_fn(out, batch)
        image_only = next(split.image_only().batches(5))
        text_only = next(split.text_only().batches(5))
        expected = torch.zeros(())
        for view, weight in ((image_only, 0.5), (text_only, 0.25)):
            expected += weight * _ce(model, view, labels)
        image_alone = UnimodalLoss(model, (EMPTY_IDS, EMPTY_MASK), 32, (0.5, 0.0))(out, batch)
        image_ce = _ce(model, image_only, labels)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(image_alone, 0.5 * image_ce, atol=1e-5, rtol=1e-5)


def test_image_only_teacher_adds_kd_toward_its_rows_logits() -> None:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config(num_classes=(2, 3))).eval()
    split = _split(7)
    rows = torch.tensor([4, 0, 6])  # not the first rows: the teacher's are looked up by index
    batch = split.batch(rows)
    generator = torch.Generator().manual_seed(1)
    teacher_logits = {
        LOGIT_KEYS[0]: torch.randn(7, 2, generator=generator),
        LOGIT_KEYS[1]: torch.randn(7, 3, generator=generator),
    }
    teacher = ImageOnlyTeacher(CachedTeacherLogits(teacher_logits), alpha=0.7, temperature=2.0)
    with torch.no_grad():
        out = model(batch.pixel_values, batch.input_ids, batch.attention_mask)
        got = UnimodalLoss(model, (EMPTY_IDS, EMPTY_MASK), 32, (0.5, 0.0), None, teacher)(
            out, batch
        )
        image_only = split.image_only().batch(rows)
        student = model(image_only.pixel_values, image_only.input_ids, image_only.attention_mask)
        picked = {k: v[rows] for k, v in teacher_logits.items()}
        expected = 0.5 * _ce(model, image_only, batch.labels) + 0.7 * kd_loss(student, picked, 2.0)
        kd_alone = UnimodalLoss(model, (EMPTY_IDS, EMPTY_MASK), 32, (0.0, 0.0), None, teacher)(
            out, batch
        )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(kd_alone, 0.7 * kd_loss(student, picked, 2.0), atol=1e-5, rtol=1e-5)
    assert float(kd_alone) > 0


def _ce(model: MultiTaskModel, view: Batch, labels: tuple[torch.Tensor, ...]) -> torch.Tensor:
    out = model(view.pixel_values, view.input_ids, view.attention_mask)
    return sum(
        (F.cross_entropy(out[k], y) for k, y in zip(LOGIT_KEYS, labels, strict=True)),
        torch.zeros(()),
    )


def test_unimodal_loss_trains_fusion_and_both_branches_but_keeps_batch_norm_statistics() -> None:
    torch.manual_seed(0)
    model = MultiTaskModel(tiny_config(num_classes=(2, 3), vision=TINY_RESNET)).train()
    batch = next(_split().batches(5))
    out = model(batch.pixel_values, batch.input_ids, batch.attention_mask)
    after_forward = {k: v.clone() for k, v in model.vision.state_dict().items() if "running" in k}
    assert after_forward  # the ResNet has batch norm
    UnimodalLoss(model, (EMPTY_IDS, EMPTY_MASK), 32, (1.0, 1.0))(out, batch).backward()
    for key, value in model.vision.state_dict().items():
        if key in after_forward:  # the black image never updates running statistics
            assert torch.equal(value, after_forward[key])
    assert model.training and model.vision.training
    for module in (model.proj_vis, model.proj_txt, model.head_modality, model.fusion, model.text):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and any(g is not None and bool(g.abs().sum() > 0) for g in grads)
