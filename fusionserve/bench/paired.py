"""The throughput target against today's server (`--server-rev`), paired: both servers up at
once and driven in turn at the top concurrency, new-old then old-new (A B B A ...).

Measured once each, minutes apart, the ratio followed the shared machine's drift (1.33×, 0.98×,
1.09× in three runs within five minutes, issue 26). Paired rounds put each drift on both sides
of a ratio, and alternating the order cancels a trend within a round; the target reads the
median ratio of the rounds.

The CPU target is paired the same way when a `pipeline` pass is given: each round also runs
the in-process pipeline once, between the two servers' drives, and reads each server's CPU per
request over its drive (`server_cpu`); the target reads the median over rounds of the new
server's CPU per request over that round's pipeline CPU per item. Measured once each, in
passes minutes apart, that ratio read 1.18-1.36x in four runs of the same code within 20
minutes (2026-12-07), the pipeline's own CPU per item moving 4.6-5.0 ms between them.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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


Side = Literal["new", "old"]


@dataclass
class PairedThroughput:
    """Requests/s of each server in each round (same round, same index), and with a pipeline
    pass each round's CPU per request and pipeline CPU per item."""

    concurrency: int
    requests: int  # measured per server per round
    new_rps: list[float] = field(default_factory=list)
    old_rps: list[float] = field(default_factory=list)
    new_failures: int = 0
    old_failures: int = 0
    # per round (same index as the rates): CPU ms per request of each server over its drive,
    # and the in-process pipeline's CPU ms per item; empty without a pipeline pass, None in a
    # round whose server CPU could not be read
    new_cpu_ms: list[float | None] = field(default_factory=list)
    old_cpu_ms: list[float | None] = field(default_factory=list)
    pipeline_cpu_ms: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [new / old for new, old in zip(self.new_rps, self.old_rps, strict=True) if old > 0]

    @property
    def median_ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    def cpu_ratios(self, side: Side = "new") -> list[float]:
        """Per round: that server's CPU per request ÷ the round's pipeline CPU per item."""
        served = self.new_cpu_ms if side == "new" else self.old_cpu_ms
        pairs = zip(served, self.pipeline_cpu_ms, strict=True)
        return [s / p for s, p in pairs if s is not None and p > 0]

    def median_cpu_ratio(self, side: Side = "new") -> float | None:
        ratios = self.cpu_ratios(side)
        return statistics.median(ratios) if ratios else None


def _drive(
    server: ServerProcess,
    url_path: str,
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    warmup: int,
    server_cpu: Callable[[int], float | None] | None = None,
) -> tuple[float, int, float | None]:
    """One measured pass: (requests/s, failed requests, server CPU ms per request or None)."""
    if server.proc.poll() is not None:
        raise RuntimeError(f"a paired server exited: {server.log_tail()}")
    probe = None if server_cpu is None else (lambda: server_cpu(server.pid))
    load = asyncio.run(
        run_load(
            server.base_url + url_path, bodies, concurrency, requests, warmup, server_cpu=probe
        )
    )
    return load.throughput, load.requests - load.ok, load.server_cpu_ms_per_request


def measure_paired(
    new: Launch,
    old: Launch,
    url_path: str,
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    rounds: int,
    warmup: int = 20,
    server_cpu: Callable[[int], float | None] | None = None,
    pipeline: Callable[[], float] | None = None,
) -> PairedThroughput:
    """`rounds` rounds; even rounds drive the new server first, odd ones the old. With
    `server_cpu` (pid → CPU seconds) and `pipeline` (one in-process pass → CPU ms per item),
    each round also runs the pipeline between the two drives."""
    result = PairedThroughput(concurrency, requests)
    cpu_pass = pipeline if server_cpu is not None else None  # a ratio needs both sides
    with (
        running_server(new.cmd, new.base_url, new.env, cwd=new.cwd) as new_server,
        running_server(old.cmd, old.base_url, old.env, cwd=old.cwd) as old_server,
    ):
        for index in range(rounds):
            sides = [("new", new_server), ("old", old_server)]
            measured: dict[str, tuple[float, int, float | None]] = {}
            pipeline_ms = 0.0
            for turn, (side, server) in enumerate(sides if index % 2 == 0 else sides[::-1]):
                if turn == 1 and cpu_pass is not None:
                    pipeline_ms = cpu_pass()
                measured[side] = _drive(
                    server, url_path, bodies, concurrency, requests, warmup, server_cpu
                )
            result.new_rps.append(measured["new"][0])
            result.old_rps.append(measured["old"][0])
            result.new_failures += measured["new"][1]
            result.old_failures += measured["old"][1]
            if cpu_pass is not None:
                result.new_cpu_ms.append(measured["new"][2])
                result.old_cpu_ms.append(measured["old"][2])
                result.pipeline_cpu_ms.append(pipeline_ms)
    return result
