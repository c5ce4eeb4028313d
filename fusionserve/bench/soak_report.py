"""The soak's report: one row per window, the run's totals by status, and the bounds — as
Markdown (for bench/RESULTS.md) and as JSON (every sample)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fusionserve.bench.soak_bounds import Bound
from fusionserve.bench.soak_drive import SoakOutcome
from fusionserve.bench.soak_windows import WindowSummary
from fusionserve.bench.target import fmt


@dataclass(frozen=True)
class SoakRun:
    """What was run, for the report's heading."""

    command: str
    started_at: str
    commit: str
    model: str
    minutes: float
    window_s: float
    max_rate: float | None  # measured (None: --rate was given)
    fraction: float
    rate: float
    mix: dict[str, float]
    cores: int
    loadavg: tuple[float, float, float]


def _statuses(window: WindowSummary) -> str:
    counts: Counter[str] = Counter()
    for key, value in window.statuses.items():
        group, _, status = key.partition(" ")
        counts[status if group != "disconnect" else "closed"] += value
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def markdown(run: SoakRun, windows: Sequence[WindowSummary], bounds: Sequence[Bound]) -> str:
    offered = f"{run.rate:.1f} req/s (given)"
    if run.max_rate is not None:
        share = f"{100 * run.fraction:.0f} % of the measured {run.max_rate:.1f} req/s"
        offered = f"{run.rate:.1f} req/s = {share}"
    mix = ", ".join(f"{group} {100 * share:.0f} %" for group, share in run.mix.items())
    held = all(b.ok for b in bounds)
    lines = [
        f"## Soak: {run.minutes:g} min, {run.model}",
        "",
        f"Produced by `{run.command}` on {run.started_at} (commit {run.commit}); {run.cores} "
        f"cores shared with the load generator, load average at start "
        f"{' / '.join(f'{x:.2f}' for x in run.loadavg)}. Poisson arrivals at {offered}; mix: "
        f"{mix}. Window {run.window_s:g} s; the first is the warm-up. p50/p99: valid requests "
        "answered 200, from scheduled arrival. Statuses as the client saw them (`closed`: a "
        "disconnect, whose answer is not read); `server 499`: the server's own count of clients "
        "that left. RSS and fds: the median of the window's /proc samples (max in brackets).",
        "",
        "| window | requests | statuses | server 499 | p50 ms | p99 ms | RSS MiB | fds "
        "| threads max | 5xx client/server | unexpected |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in windows:
        label = f"{w.index + 1}" + (" (warm-up)" if w.index == 0 else "")
        lines.append(
            f"| {label} | {w.requests} | {_statuses(w)} | {w.server_statuses.get('499', 0)} "
            f"| {fmt(w.p50_ms, 1)} | {fmt(w.p99_ms, 1)} | {w.rss_mb:.1f} ({w.rss_max_mb:.1f}) "
            f"| {w.fds_median:g} ({w.fds_max}) | {w.threads_max} | {w.client_5xx}/{w.server_5xx} "
            f"| {sum(w.unexpected.values())} |"
        )
    unexpected: Counter[str] = Counter()
    for w in windows:
        unexpected.update(w.unexpected)
    lines += ["", "| bound | rule | measured | holds |", "|---|---|---|---|"]
    lines += [f"| {b.name} | {b.rule} | {b.measured} | {'yes' if b.ok else 'NO'} |" for b in bounds]
    lines += ["", f"Every bound holds: {'yes' if held else 'NO'}."]
    if unexpected:
        lines.append("Unexpected answers: " + ", ".join(f"{k} ×{v}" for k, v in unexpected.items()))
    return "\n".join(lines) + "\n"


def write_json(
    path: Path,
    run: SoakRun,
    windows: Sequence[WindowSummary],
    bounds: Sequence[Bound],
    outcome: SoakOutcome,
) -> None:
    data = {
        "run": asdict(run),
        "rest_before": asdict(outcome.rest_before),
        "rest_after": asdict(outcome.rest_after),
        "windows": [asdict(w) for w in windows],
        "bounds": [asdict(b) for b in bounds],
        "held": all(b.ok for b in bounds),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
