"""The ablation inputs: what image-only and text-only send, exactly."""

from __future__ import annotations

import numpy as np

from app.contract.image import decode_image, image_to_array
from fusionserve.evaluate.cases import Case
from fusionserve.evaluate.conditions import blank_image, inputs_for

CASE = Case("x.png", b"image bytes", "a caption", (0, 1))


def test_the_blank_image_is_black_at_the_input_size_and_minus_one_normalised() -> None:
    img = decode_image(blank_image(224))
    assert img.size == (224, 224)
    assert not np.asarray(img).any()
    assert np.all(image_to_array(img, 224) == -1.0)


def test_each_condition_removes_one_modality() -> None:
    blank = blank_image(32)
    assert inputs_for("fused", CASE, blank) == (b"image bytes", "a caption")
    assert inputs_for("image_only", CASE, blank) == (b"image bytes", "")
    assert inputs_for("text_only", CASE, blank) == (blank, "a caption")
