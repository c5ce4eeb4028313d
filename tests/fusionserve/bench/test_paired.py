"""Paired throughput: two real `fusionserve serve` processes up at once, driven in turn."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.settings import Settings
from fusionserve.bench.ceiling import pipeline_pass
from fusionserve.bench.coldstart import free_port
from fusionserve.bench.paired import Launch, PairedThroughput, measure_paired
from fusionserve.bench.samples import load_dev_samples, multipart_body
from fusionserve.bench.server_compare import _cpu_target, _speedup_target, paired_section
from fusionserve.bench.server_metrics import batching
from fusionserve.bench.suite import REPO_ROOT, cpu_seconds, serve_command


def _launch(bundle_dir: Path, env: dict[str, str]) -> Launch:
    port = free_port()
    return Launch(serve_command(bundle_dir, "medpix-student", "fp32", port), env, REPO_ROOT, port)


@pytest.mark.slow
def test_two_servers_are_driven_in_turn(bench_bundle_dir: Path, medpix_root: Path) -> None:
    samples = load_dev_samples("medpix", medpix_root.parent, limit=3)
    bodies = [multipart_body(s) for s in samples]
    one_run = _launch(bench_bundle_dir, {"FUSIONSERVE_CONCURRENT_RUNS": "1"})
    two_runs = _launch(bench_bundle_dir, {"FUSIONSERVE_CONCURRENT_RUNS": "2"})
    pipeline = pipeline_pass(bench_bundle_dir / "medpix-student", Settings(), samples, 8)
    paired = measure_paired(
        two_runs,
        one_run,
        "/predict?model=medpix-student",
        bodies,
        4,
        8,
        rounds=3,
        warmup=1,
        server_cpu=cpu_seconds,
        pipeline=pipeline,
    )
    assert batching(two_runs.base_url, "medpix-student") == (1, None)  # stopped: not said
    assert len(paired.new_rps) == len(paired.old_rps) == len(paired.ratios) == 3
    assert all(rps > 0 for rps in paired.new_rps + paired.old_rps)
    assert paired.new_failures == paired.old_failures == 0
    assert paired.median_ratio == sorted(paired.ratios)[1]
    # each round: both servers' CPU over their drives and one in-process pipeline pass
    cpu = [*paired.new_cpu_ms, *paired.old_cpu_ms, *paired.pipeline_cpu_ms]
    assert len(cpu) == 9 and all(value is not None and value > 0 for value in cpu)
    assert paired.median_cpu_ratio() == sorted(paired.cpu_ratios())[1]
    results = SimpleNamespace(paired=paired, config=SimpleNamespace(server_rev="abc1234"))
    lines = paired_section(results)  # type: ignore[arg-type]
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[1] for row in rows] == ["new, old", "old, new", "new, old"]
    median = next(line for line in lines if line.startswith("| median |"))
    assert median.endswith(f"{paired.median_cpu_ratio('old'):.2f}× |") and "abc1234" in lines[0]
    assert all(row.count("|") == 11 for row in rows)  # the round's five CPU columns


def test_ratios_skip_a_round_the_old_server_answered_nothing() -> None:
    paired = PairedThroughput(32, 100, new_rps=[150.0, 120.0, 90.0], old_rps=[100.0, 0.0, 100.0])
    assert paired.ratios == [1.5, 0.9] and paired.median_ratio == pytest.approx(1.2)
    assert PairedThroughput(32, 100).median_ratio is None


def test_the_speedup_target_reads_the_paired_median_and_fails_on_failed_requests() -> None:
    paired = PairedThroughput(32, 100, new_rps=[150.0, 140.0, 160.0], old_rps=[100.0] * 3)
    config = SimpleNamespace(requests={1: 10, 32: 100}, server_rev="abc1234")
    results = SimpleNamespace(paired=paired, config=config)
    target = _speedup_target(results, 120.0, 100.0)  # type: ignore[arg-type]
    assert target.holds is True and target.measured.startswith("1.50× (median of 3")
    assert "measured once each: 1.20×" in target.measured
    paired.old_failures = 2
    failed = _speedup_target(results, 120.0, 100.0)  # type: ignore[arg-type]
    assert failed.holds is False and failed.measured.endswith("; 2 failed requests")
    results.paired = None
    assert _speedup_target(results, 120.0, 100.0).holds is False  # type: ignore[arg-type]


def test_the_cpu_target_reads_the_paired_median_when_rounds_measured_cpu() -> None:
    paired = PairedThroughput(
        32,
        100,
        new_rps=[150.0] * 3,
        old_rps=[100.0] * 3,
        new_cpu_ms=[6.0, 5.5, 7.0],
        old_cpu_ms=[7.0, 7.0, 7.0],
        pipeline_cpu_ms=[5.0, 5.0, 5.0],
    )
    assert paired.cpu_ratios() == [1.2, 1.1, 1.4] and paired.median_cpu_ratio() == 1.2
    assert paired.median_cpu_ratio("old") == pytest.approx(1.4)
    top = SimpleNamespace(server_cpu_ms_per_request=7.0)
    new = SimpleNamespace(
        served=SimpleNamespace(level=lambda c: top), ceiling=SimpleNamespace(cpu_ms_per_item=5.0)
    )
    results = SimpleNamespace(paired=paired)
    target = _cpu_target(results, new, 32)  # type: ignore[arg-type]
    assert target.holds is True and target.measured.startswith("1.20× (median of 3")
    assert "1.10–1.40×" in target.measured and "measured once each: 1.40×" in target.measured
    paired.new_failures = 1  # CPU over failed requests is no serving cost
    assert _cpu_target(results, new, 32).holds is False  # type: ignore[arg-type]
    paired.new_cpu_ms[1] = None  # a round whose CPU was not read drops out, the others stay
    assert paired.cpu_ratios() == [1.2, 1.4]
    assert "| 2 | old, new | 150.0 | 100.0 | 1.50× | n/a | 7.00 | 5.00 | n/a× | 1.40× |" in (
        paired_section(results_of(paired))  # type: ignore[arg-type]
    )
    paired.new_failures = 0
    paired.pipeline_cpu_ms, paired.new_cpu_ms, paired.old_cpu_ms = [], [], []  # no CPU rounds
    single = _cpu_target(results, new, 32)  # type: ignore[arg-type]
    assert single.holds is False and single.measured == "1.40× (7.00 vs 5.00 ms)"


def results_of(paired: PairedThroughput) -> SimpleNamespace:
    return SimpleNamespace(paired=paired, config=SimpleNamespace(server_rev="abc1234"))


class _FakeServer:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.pid, self.log = name, 1, log

    def __enter__(self) -> _FakeServer:
        return self

    def __exit__(self, *_: object) -> None:
        pass


@pytest.mark.parametrize("with_cpu", [True, False])
def test_each_round_runs_the_pipeline_between_the_two_drives(
    monkeypatch: pytest.MonkeyPatch, with_cpu: bool
) -> None:
    """Both orders: new, pipeline, old then old, pipeline, new; no pipeline pass (and no CPU
    columns) without a way to read the servers' CPU."""
    from fusionserve.bench import paired as paired_module

    log: list[str] = []
    launches = {}
    for name in ("new", "old"):
        launches[name] = Launch(["serve", name], {}, REPO_ROOT, 0)
    servers = iter([_FakeServer("new", log), _FakeServer("old", log)])
    monkeypatch.setattr(paired_module, "running_server", lambda *a, **k: next(servers))

    def drive(server, url, bodies, concurrency, requests, warmup, server_cpu=None):
        log.append(server.name)
        cpu = 6.0 if server.name == "new" else 7.0
        return 100.0, 0, cpu if server_cpu is not None else None

    monkeypatch.setattr(paired_module, "_drive", drive)

    def pipeline() -> float:
        log.append("pipeline")
        return 5.0

    result = measure_paired(
        launches["new"],
        launches["old"],
        "/predict",
        [],
        4,
        8,
        rounds=2,
        server_cpu=(lambda pid: 1.0) if with_cpu else None,
        pipeline=pipeline,
    )
    if with_cpu:
        assert log == ["new", "pipeline", "old", "old", "pipeline", "new"]
        assert result.cpu_ratios() == [1.2, 1.2] and result.cpu_ratios("old") == [1.4, 1.4]
    else:
        assert log == ["new", "old", "old", "new"] and result.pipeline_cpu_ms == []
