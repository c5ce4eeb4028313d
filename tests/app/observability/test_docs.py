"""The README's metric table documents exactly the metrics the service exports."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.app.observability.scrape import scrape

DOC = Path(__file__).resolve().parents[3] / "README.md"


def test_metric_table_matches_the_scrape(observed: TestClient) -> None:
    table = {
        m.group(1): (m.group(2), {x.strip(" `") for x in m.group(3).split(",")} - {"—"})
        for m in re.finditer(
            r"^\| `(fusionserve_\w+)` \| (\w+) \| ([^|]+) \|", DOC.read_text(), re.M
        )
    }
    exported = {}
    for family in text_string_to_metric_families(scrape(observed)):
        if family.name.startswith("fusionserve_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = {k for s in family.samples for k in s.labels} - {"le"}
            exported[name] = (family.type, labels)
    assert set(table) == set(exported)
    for name, (kind, labels) in exported.items():
        assert table[name][0] == kind, name
        if labels:  # families with no series yet show no labels in a scrape
            assert table[name][1] == labels, name
