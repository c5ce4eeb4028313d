"""The throughput target against today's server (`--server-rev`), paired: both servers up at
once and driven in turn at the top concurrency, new-old then old-new (A B B A ...).

Measured once each, minutes apart, the ratio followed the shared machine's drift (1.33×, 0.98×,
1.09× in three runs within five minutes, issue 26). Paired rounds put each drift on both sides
of a ratio, and alternating the order cancels a trend within a round; the target reads the
median ratio of the rounds.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fusionserve.bench.coldstart import ServerProcess, running_server
from fusionserve.bench.loadgen import Body, run_load


@dataclass(frozen=True)
class Launch:
    """How to start one server: command, environment, working folder, where it listens."""

    cmd: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class PairedThroughput:
    """Requests/s of each server in each round (same round, same index)."""

    concurrency: int
    requests: int  # measured per server per round
    new_rps: list[float] = field(default_factory=list)
    old_rps: list[float] = field(default_factory=list)
    new_failures: int = 0
    old_failures: int = 0

    @property
    def ratios(self) -> list[float]:
        return [new / old for new, old in zip(self.new_rps, self.old_rps, strict=True) if old > 0]

    @property
    def median_ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None


def _drive(
    server: ServerProcess,
    url_path: str,
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    warmup: int,
) -> tuple[float, int]:
    """One measured pass: (requests/s, failed requests)."""
    if server.proc.poll() is not None:
        raise RuntimeError(f"a paired server exited: {server.log_tail()}")
    load = asyncio.run(run_load(server.base_url + url_path, bodies, concurrency, requests, warmup))
    return load.throughput, load.requests - load.ok


def measure_paired(
    new: Launch,
    old: Launch,
    url_path: str,
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    rounds: int,
    warmup: int = 20,
) -> PairedThroughput:
    """`rounds` rounds; even rounds drive the new server first, odd ones the old."""
    result = PairedThroughput(concurrency, requests)
    with (
        running_server(new.cmd, new.base_url, new.env, cwd=new.cwd) as new_server,
        running_server(old.cmd, old.base_url, old.env, cwd=old.cwd) as old_server,
    ):
        for index in range(rounds):
            sides = [("new", new_server), ("old", old_server)]
            measured: dict[str, tuple[float, int]] = {}
            for side, server in sides if index % 2 == 0 else sides[::-1]:
                measured[side] = _drive(server, url_path, bodies, concurrency, requests, warmup)
            result.new_rps.append(measured["new"][0])
            result.old_rps.append(measured["old"][0])
            result.new_failures += measured["new"][1]
            result.old_failures += measured["old"][1]
    return result
