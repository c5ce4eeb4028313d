"""fusionserve.bench.domain_cost on the committed bundles: the whole domain check's time (the
served graph and scoring against the graph cut to its task outputs), per bundle with a check,
at each batch size asked for, averaged over pairings of fresh sessions of the two graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contract.manifest import Manifest
from fusionserve.bench.domain_cost import main

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
        # every served session met every cut one (8 cases: each pairing at least once)
        assert len(row["by_pairing"]) == 4
        mean = sum(row["by_pairing"]) / 4
        assert row["domain_over_graph"] == pytest.approx(mean, rel=1e-2, abs=2e-4)
        assert (
            row["scores_in_graph"] is Manifest.load(EXPORTED / row["bundle"]).domain.scores_in_graph
        )
