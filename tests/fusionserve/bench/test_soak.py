"""The soak: a few seconds of it for real (a real server, real sockets, real dev images), and
its bounds, which must fail on a series that grows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionserve.bench.soak_bounds import FD_REST_SLACK, FD_SLACK, THREAD_SLACK, check_bounds
from fusionserve.bench.soak_proc import ProcessSample
from fusionserve.bench.soak_windows import WindowSummary
from fusionserve.cli import main


@pytest.mark.slow
def test_soak_runs_for_real(bench_bundle_dir: Path, medpix_root: Path, tmp_path: Path) -> None:
    out, out_json = tmp_path / "soak.md", tmp_path / "soak.json"
    argv = [
        "bench", "soak", "--minutes", "0.2", "--window-s", "6", "--sample-s", "0.5",
        "--bundle-dir", str(bench_bundle_dir), "--datasets-root", str(medpix_root.parent),
        "--samples", "8", "--rate-requests", "64", "--fraction", "0.1", "--burst-concurrency", "32",
        "--out", str(out), "--json", str(out_json),
    ]  # fmt: skip
    assert main(argv) == 0, out.read_text() if out.exists() else "no report"
    data = json.loads(out_json.read_text())
    assert data["held"] and all(b["ok"] for b in data["bounds"])
    assert 0 < data["run"]["rate"] == pytest.approx(0.1 * data["run"]["max_rate"])
    windows = data["windows"]
    assert len(windows) == 2
    statuses: dict[str, int] = {}
    server_499 = 0
    for window in windows:
        assert window["samples"] and window["rss_mb"] > 0 and window["threads_max"] > 0
        for key, count in window["statuses"].items():
            statuses[key] = statuses.get(key, 0) + count
        server_499 += window["server_statuses"].get("499", 0)
        assert window["client_5xx"] == window["server_5xx"] == 0
    assert statuses["valid 200"] > 0 and statuses["oversized 413"] > 0
    assert any(key.startswith("invalid 4") for key in statuses)
    assert 0 < server_499 <= statuses["disconnect sent"]  # the server counted clients leaving
    report = out.read_text()
    assert "| 1 (warm-up) |" in report and "Every bound holds: yes." in report


def _window(
    index: int, rss: float, fds: int, threads: int, server_5xx: int = 0, unexpected: int = 0
) -> WindowSummary:
    samples = [ProcessSample(float(i), rss, fds, threads) for i in range(10)]
    return WindowSummary(
        index=index, requests=100, valid_ok=70, p50_ms=10.0, p99_ms=40.0, rss_mb=rss,
        rss_max_mb=rss, fds_median=fds, fds_max=fds, threads_max=threads,
        statuses={"valid 200": 70},
        server_statuses={"200": 70}, unexpected={"pdf: 422": unexpected} if unexpected else {},
        client_5xx=0, server_5xx=server_5xx, samples=samples,
    )  # fmt: skip


REST = ProcessSample(0.0, 250.0, 30, 12)


def _failed(windows: list[WindowSummary], rest_after: ProcessSample = REST) -> set[str]:
    return {b.name for b in check_bounds(windows, REST, rest_after) if not b.ok}


def test_a_flat_series_holds() -> None:
    flat = [_window(i, 300.0, 40, 12) for i in range(5)]
    assert _failed(flat) == set()


def test_each_bound_fails_on_growth() -> None:
    grown = [_window(0, 300.0, 40, 12), _window(1, 310.0, 41, 12), _window(2, 316.0, 40, 12)]
    assert _failed(grown) == {"RSS growth after warm-up"}  # +5.3 %
    fds = [_window(0, 300.0, 40, 12), _window(1, 300.0, 41 + FD_SLACK, 12)]
    assert _failed(fds) == {"open fds flat under load"}
    leaked = ProcessSample(9.0, 250.0, 31 + FD_REST_SLACK, 12)
    assert _failed([_window(0, 300.0, 40, 12)] * 2, leaked) == {"open fds at rest"}
    threads = [_window(0, 300.0, 40, 12), _window(1, 300.0, 40, 13 + THREAD_SLACK)]
    assert _failed(threads) == {"threads flat"}
    more = ProcessSample(9.0, 250.0, 30, 13 + THREAD_SLACK)
    assert _failed([_window(0, 300.0, 40, 12)] * 2, more) == {"threads flat"}
    errors = [_window(0, 300.0, 40, 12), _window(1, 300.0, 40, 12, server_5xx=1)]
    assert _failed(errors) == {"unexpected 5xx"}
    wrong = [_window(0, 300.0, 40, 12), _window(1, 300.0, 40, 12, unexpected=1)]
    assert _failed(wrong) == {"unexpected statuses"}


def test_too_short_a_soak_fails() -> None:
    assert _failed([_window(0, 300.0, 40, 12)]) == {"windows"}
