"""Mirrored session order: neither graph's sessions open earlier on average."""

from __future__ import annotations

import pytest

from fusionserve.bench.session_order import mirrored


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_each_graph_gets_count_sessions_and_the_same_mean_position(count: int) -> None:
    order = mirrored(count)
    a = [i for i, opens_a in enumerate(order) if opens_a]
    b = [i for i, opens_a in enumerate(order) if not opens_a]
    assert len(a) == len(b) == count
    if count % 2 == 0:  # whole A B B A blocks: the mean positions are equal
        assert sum(a) == sum(b)
    assert order[:4] == [True, False, False, True][: len(order)]
