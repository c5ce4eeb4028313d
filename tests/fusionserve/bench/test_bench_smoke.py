"""The whole benchmark in a tiny configuration: real processes, real HTTP, real dev images.

Asserts the report's structure and internal consistency, never absolute numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fusionserve.bench.profile import py_spy
from fusionserve.bench.thread_cpu import ROLES
from fusionserve.cli import build_parser, main

SECTIONS = (
    "# Benchmark results",
    "## Machine",
    "## Targets (ratios within this run)",
    "## Load generator runs (HTTP on loopback)",
    "## Ceiling (same pipeline in-process, no HTTP)",
    "## Cold start and memory",
)
REQUESTS = {1: 6, 4: 12}


@pytest.mark.slow
def test_bench_tiny_run(
    bench_bundle_dir: Path, bench_checkpoint: Path, medpix_root: Path, tmp_path: Path
) -> None:
    out, out_json = tmp_path / "RESULTS.md", tmp_path / "results.json"
    argv = [
        "bench", "--bundle-dir", str(bench_bundle_dir), "--checkpoint", str(bench_checkpoint),
        "--datasets-root", str(medpix_root.parent), "--requests", "1:6,4:12", "--warmup", "2",
        "--samples", "4", "--single-items", "5", "--cold-starts", "2",
        "--out", str(out), "--json", str(out_json), "--stages", str(tmp_path / "stages"),
    ]  # fmt: skip
    assert main(argv) == 0

    report = out.read_text()
    positions = [report.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "--requests 1:6,4:12" in report  # the command that produced it
    data = json.loads(out_json.read_text())

    assert [v["label"] for v in data["variants"]] == [
        "student fp32",
        "student int8",
        "teacher fp32",
    ]
    assert [v["served"]["precision"] for v in data["variants"]] == ["fp32", "int8", "fp32"]
    assert data["naive"]["label"] == "naive torch"
    assert set(data["summary"]) == {"student fp32", "student int8", "teacher fp32", "naive torch"}
    for label, levels in data["summary"].items():
        open_loop = levels.pop("open_loop", None)  # Poisson arrivals (served runs)
        assert (open_loop is None) == (label == "naive torch"), label
        if open_loop is not None:
            assert open_loop["ok"] > 0 and open_loop["failures"] == {}
        assert set(levels) == {str(c) for c in REQUESTS}, label
        for concurrency, level in levels.items():
            assert level["ok"] == REQUESTS[int(concurrency)], (label, level["failures"])
            assert level["failures"] == {}
            assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
            assert level["throughput"] > 0
    for variant in data["variants"]:
        ceiling = variant["ceiling"]
        assert len(ceiling["single_latencies_ms"]) == 5
        assert ceiling["wall_s"] > 0 and ceiling["inference_items_per_s"] > 0
        assert ceiling["cpu_s"] > 0
        for level in variant["served"]["levels"]:
            phases = level["server_phases_ms"]  # the service reports its own timings
            assert set(phases) == {"queue", "preprocess", "inference", "total"}
            assert phases["total"] >= phases["inference"] >= 0
            assert level["server_cpu_s"] > 0 and level["client_cpu_s"] > 0
        assert variant["served"]["peak_rss_mb"] > 0
    assert all(level["server_phases_ms"] == {} for level in data["naive"]["levels"])
    profiled = data["variants"][0]["served"]  # --stages: the student fp32's profiled pass
    if py_spy() is not None:
        assert profiled["stages"] and (tmp_path / "stages" / "student-fp32-c4.svg").is_file()
        roles = [row["role"] for row in profiled["threads"]]  # those that got a clock tick
        known = [role for role, _ in ROLES]
        assert roles and roles == [r for r in known if r in roles], roles  # named, in order
        assert all(row["cpu_ms_per_request"] > 0 for row in profiled["threads"])
        assert "| thread role | student fp32 threads | student fp32 CPU ms/req |" in report

    assert len(data["cold_starts_s"]) == 2 and all(s > 0 for s in data["cold_starts_s"])
    ratios = data["ratios"]
    for key in ("served_over_ceiling", "served_over_naive", "student_over_teacher",
                "int8_over_fp32", "cold_start_s", "served_server_cpu_ms_per_request",
                "ceiling_cpu_ms_per_item", "naive_server_cpu_ms_per_request"):  # fmt: skip
        assert ratios[key] is not None and math.isfinite(ratios[key]) and ratios[key] > 0, key
    # 6 + served CPU, p99/p50, open-loop p99, int8 graph, bundle size
    assert len(data["targets"]) == 11
    for target in data["targets"]:
        assert target["holds"] in (True, False)  # every target measured; none decided here
        assert f"| {target['name']} | {target['goal']} |" in report


@pytest.mark.slow
def test_bench_measures_the_committed_bundle_beside_its_git_history(
    wound_root: Path, tmp_path: Path
) -> None:
    """--baseline-rev: the student as committed at a revision, extracted from git and run in
    the same benchmark; the old-vs-new table and the ratio target come out of one run."""
    out, out_json = tmp_path / "RESULTS.md", tmp_path / "results.json"
    argv = [
        "bench", "--bundle-dir", "exported", "--student", "wound-student", "--teacher", "none",
        "--checkpoint", "none", "--baseline-rev", "HEAD", "--datasets-root",
        str(wound_root.parent), "--requests", "1:4,4:8", "--warmup", "1", "--samples", "4",
        "--single-items", "3", "--cold-starts", "1", "--out", str(out), "--json", str(out_json),
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out_json.read_text())
    assert [v["label"] for v in data["variants"]] == [
        "student fp32",
        "student int8",
        "old student fp32",
    ]
    old = data["variants"][2]
    assert old["bundle_dir"] != "exported" and old["served"]["levels"][1]["requests"] == 8
    report = out.read_text()
    assert "## Old vs new student (same run; old = `HEAD`)" in report
    assert "| bundle MB |" in report
    ceiling = next(t for t in data["targets"] if t["name"].startswith("student ceiling vs"))
    assert ceiling["holds"] in (True, False) and "fp32" in ceiling["measured"]


def test_requests_option_is_validated() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "--requests", "1:10,32:50"])
    assert args.requests == {1: 10, 32: 50}
    for bad in ("1-10", "0:10", "4:0", ""):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "--requests", bad])
