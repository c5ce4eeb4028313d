"""hide_text: text dropout feeds the service's empty-text row, as a client that sends no text."""

from __future__ import annotations

import torch

from models.training.unimodal import hide_text


def empty_row(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(1, length, dtype=torch.int64)
    ids[0, : min(5, length)] = torch.tensor([101, 2053, 6412, 2800, 102])[:length]
    mask = (ids != 0).to(torch.int64)
    return ids, mask


def test_hidden_rows_become_the_empty_text_row_and_others_are_untouched() -> None:
    ids = torch.randint(1000, 2000, (400, 12))
    mask = torch.ones(400, 12, dtype=torch.int64)
    mask[:, 9:] = 0
    empty = empty_row(12)
    out_ids, out_mask = hide_text(ids, mask, 0.3, torch.Generator().manual_seed(0), empty)
    hidden = (out_ids == empty[0]).all(dim=1)
    assert 80 < int(hidden.sum()) < 160  # about 30 % of 400 rows
    assert bool((out_mask[hidden] == empty[1]).all())
    torch.testing.assert_close(out_ids[~hidden], ids[~hidden])
    torch.testing.assert_close(out_mask[~hidden], mask[~hidden])
    assert int(mask.sum()) == 400 * 9  # the batch's own tensors are not modified


def test_zero_share_returns_the_inputs_themselves() -> None:
    ids = torch.ones(3, 4, dtype=torch.int64)
    mask = torch.ones(3, 4, dtype=torch.int64)
    out = hide_text(ids, mask, 0.0, torch.Generator(), empty_row(4))
    assert out[0] is ids and out[1] is mask
