"""fusionserve.bench.student_cost on the committed bundles: both graphs timed on the same served
inputs, each through more than one session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionserve.bench.student_cost import PAIRS, main

EXPORTED = Path(__file__).resolve().parents[3] / "exported"


def test_prints_one_ratio_per_task_set(medpix_root: Path, wound_root: Path, capsys) -> None:
    argv = ["--exported", str(EXPORTED), "--datasets-root", str(medpix_root.parent)]
    assert main([*argv, "--cases", "2", "--rounds", "1", "--sessions", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["task_set"] for r in rows] == list(PAIRS)
    for row in rows:
        assert row["cases"] == 2 and row["sessions"] == 2
        assert row["student_ms"] > 0 and row["teacher_ms"] > 0
        ratio = row["teacher_ms"] / row["student_ms"]
        assert row["teacher_over_student"] == pytest.approx(ratio, rel=1e-2)
        assert row["student_parameters"] < row["teacher_parameters"]
