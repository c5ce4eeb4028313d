"""fusionserve.bench.domain_cost on the committed bundles: the whole domain check's time (the
served graph and scoring against the graph cut to its task outputs), per bundle with a check,
at each batch size asked for, averaged over pairings of fresh sessions of the two graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contract.manifest import Manifest
from fusionserve.bench.domain_cost import main, schedule

EXPORTED = Path(__file__).resolve().parents[3] / "exported"


def test_prints_the_ratio_per_bundle_and_batch(medpix_root: Path, capsys) -> None:
    checked = sorted(
        p.parent.name for p in EXPORTED.glob("*/manifest.json") if Manifest.load(p.parent).domain
    )
    argv = ["--exported", str(EXPORTED), "--datasets-root", str(medpix_root.parent)]
    sizes = ["--batch", "1", "2", "--cases", "8", "--rounds", "1", "--sessions", "2"]
    assert main([*argv, *sizes]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["bundle"], r["batch"]) for r in rows] == [(b, n) for b in checked for n in (1, 2)]
    for row in rows:
        assert row["items"] == 8 and row["sessions"] == 2
        assert row["graph_ms_per_item"] > 0 and row["served_ms_per_item"] > 0
        added = row["served_ms_per_item"] - row["graph_ms_per_item"]
        assert row["domain_ms_per_item"] == pytest.approx(added, abs=2e-4)
        ratio = row["domain_ms_per_item"] / row["graph_ms_per_item"]
        assert row["domain_over_graph"] == pytest.approx(ratio, rel=1e-2, abs=1e-4)
        assert len(row["by_pairing"]) == 4 and row["rounds_per_pairing"] == 1
        spec = Manifest.load(EXPORTED / row["bundle"]).domain
        assert spec is not None and row["scores_in_graph"] is spec.scores_in_graph


def test_the_schedule_pairs_every_session_both_ways_two_at_a_time() -> None:
    runs = list(schedule(sessions=2, rounds=2, batches=3))
    assert len(runs) == 2 * 4 * 3  # rounds per pairing x pairings x batches
    rounds = [runs[i : i + 3] for i in range(0, len(runs), 3)]
    for round_ in rounds:  # one pairing per round: two sessions alternate, as in a server
        assert len({(s, c) for s, c, _, _ in round_}) == 1
        assert [first for _, _, _, first in round_] in ([False, True, False], [True, False, True])
    for pairing in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        for index in range(3):  # every batch, both ways
            orders = {first for s, c, i, first in runs if (s, c) == pairing and i == index}
            assert orders == {True, False}
    with pytest.raises(SystemExit):  # one batch: no batch after the first is counted
        main(["--batch", "64", "--cases", "64", "--exported", str(EXPORTED)])
