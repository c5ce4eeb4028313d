"""hide_text: the input-level text dropout used to make the image branch learn."""

from __future__ import annotations

import torch

from models.training.trainer import hide_text


def test_hidden_rows_keep_only_cls_and_others_are_untouched() -> None:
    mask = torch.ones(400, 12, dtype=torch.int64)
    mask[:, 9:] = 0
    out = hide_text(mask, 0.3, torch.Generator().manual_seed(0))
    hidden = out[:, 1:].sum(dim=1) == 0
    assert 80 < int(hidden.sum()) < 160  # about 30 % of 400 rows
    assert bool((out[:, 0] == 1).all())
    torch.testing.assert_close(out[~hidden], mask[~hidden])
    assert int(mask.sum()) == 400 * 9  # the batch's own mask is not modified


def test_zero_share_returns_the_mask_itself() -> None:
    mask = torch.ones(3, 4, dtype=torch.int64)
    assert hide_text(mask, 0.0, torch.Generator()) is mask
