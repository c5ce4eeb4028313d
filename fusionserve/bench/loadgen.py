"""A bounded, closed-loop load generator: `concurrency` clients, a fixed number of requests.

Each client sends its next request as soon as its previous one is answered (closed loop), so
the offered load never exceeds what `concurrency` callers could produce and the run always ends
after exactly `requests` requests — comparable across servers and runs. Latency is measured in
the client, around the whole HTTP exchange, and only for 200 answers; anything else is counted
by status, never hidden. Each client owns one keep-alive connection of `fusionserve.bench.wire`
(pre-built request bytes), so the generator's own CPU and queueing stay out of the numbers.
The open-loop (Poisson) generator is `fusionserve.bench.open_loop`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fusionserve.bench.server_metrics import mean_batch
from fusionserve.bench.wire import Answer, Connection, Target, request_bytes

TRANSPORT_ERROR = 0  # status recorded when no HTTP answer came back
PHASES = ("queue", "preprocess", "inference", "total")

Body = tuple[bytes, str]  # (request body, Content-Type)


@dataclass(frozen=True)
class LoadResult:
    """One load level's outcome."""

    concurrency: int
    requests: int
    wall_s: float
    latencies_ms: tuple[float, ...]  # successful requests only
    failures: dict[int, int] = field(default_factory=dict)  # status → count (0 = transport)
    server_phases_ms: dict[str, float] = field(default_factory=dict)  # means of timing_ms
    client_cpu_s: float = 0.0  # this process's CPU time during the measured requests
    server_cpu_s: float | None = None  # the server's, when a probe was given
    mean_batch: float | None = None  # items per graph run the server formed, when probed

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        """Server CPU per request: robust to other load on the machine, unlike wall time."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return 1000.0 * self.server_cpu_s / self.requests

    @property
    def client_cpu_ms_per_request(self) -> float:
        return 1000.0 * self.client_cpu_s / self.requests if self.requests else 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time."""
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies_ms), q))

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[int] = field(default_factory=Counter)
    phase_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    phase_count: int = 0

    def add(self, answer: Answer, elapsed_ms: float) -> None:
        if answer.status != 200:
            self.failures[answer.status] += 1
            return
        self.latencies_ms.append(elapsed_ms)
        try:
            timing = json.loads(answer.body).get("timing_ms")
        except (ValueError, AttributeError):
            return
        if isinstance(timing, dict) and all(k in timing for k in PHASES):
            for key in PHASES:
                self.phase_sums[key] += float(timing[key])
            self.phase_count += 1

    def phases(self) -> dict[str, float]:
        if not self.phase_count:
            return {}
        return {k: self.phase_sums[k] / self.phase_count for k in PHASES}

    def result(
        self,
        concurrency: int,
        requests: int,
        measured: tuple[float, float, float | None, float | None],
    ) -> LoadResult:
        """The measured requests as a LoadResult; `measured` is `Probe.end()`."""
        wall_s, client_cpu_s, server_cpu_s, batch = measured
        return LoadResult(
            concurrency=concurrency,
            requests=requests,
            wall_s=wall_s,
            latencies_ms=tuple(self.latencies_ms),
            failures=dict(self.failures),
            server_phases_ms=self.phases(),
            client_cpu_s=client_cpu_s,
            server_cpu_s=server_cpu_s,
            mean_batch=batch,
        )


def wire_requests(target: Target, bodies: Sequence[Body]) -> list[bytes]:
    if not bodies:
        return [request_bytes(target, None)]
    return [request_bytes(target, body, content_type) for body, content_type in bodies]


async def exchange(
    connection: Connection, request: bytes, timeout_s: float, tally: Tally | None, start: float
) -> None:
    """One request; latency from `start` (its send time, or its scheduled arrival)."""
    try:
        async with asyncio.timeout(timeout_s):
            answer = await connection.exchange(request)
    except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError):
        if tally is not None:
            tally.failures[TRANSPORT_ERROR] += 1
        return
    if tally is not None:
        tally.add(answer, (time.perf_counter() - start) * 1000.0)


async def _client_loop(
    connection: Connection,
    requests: Sequence[bytes],
    counter: itertools.count[int],
    total: int,
    tally: Tally | None,
    timeout_s: float,
) -> None:
    while (index := next(counter)) < total:
        request = requests[index % len(requests)]
        await exchange(connection, request, timeout_s, tally, time.perf_counter())


async def _drive(
    connections: Sequence[Connection],
    requests: Sequence[bytes],
    total: int,
    tally: Tally | None,
    timeout_s: float,
) -> None:
    counter = itertools.count()
    await asyncio.gather(
        *(_client_loop(c, requests, counter, total, tally, timeout_s) for c in connections)
    )


async def run_load(
    url: str,
    bodies: Sequence[Body],
    concurrency: int,
    requests: int,
    warmup: int = 0,
    timeout_s: float = 120.0,
    server_cpu: Callable[[], float | None] | None = None,
    server_batches: Callable[[], tuple[float, float] | None] | None = None,
) -> LoadResult:
    """`requests` POSTs of `bodies` (cycled) to `url` from `concurrency` clients (GETs when
    `bodies` is empty: the HTTP round trip alone, the floor under every request).

    `warmup` unrecorded requests at the same concurrency come first: they open the
    connections and let the server reach its steady state. `server_cpu` (the server process's
    CPU seconds so far) and `server_batches` (its (items, graph runs) so far) are read around
    the measured requests only.
    """
    target = Target.parse(url)
    wire = wire_requests(target, bodies)
    connections = [Connection(target) for _ in range(concurrency)]
    try:
        await _drive(connections, wire, warmup, None, timeout_s)
        tally = Tally()
        probe = Probe(server_cpu, server_batches)
        await _drive(connections, wire, requests, tally, timeout_s)
        measured = probe.end()
    finally:
        for connection in connections:
            connection.close()
    return tally.result(concurrency, requests, measured)


class Probe:
    """Wall time, this process's CPU, the server's CPU and its batches around a measurement."""

    def __init__(
        self,
        server_cpu: Callable[[], float | None] | None,
        server_batches: Callable[[], tuple[float, float] | None] | None,
    ) -> None:
        self._server_cpu, self._server_batches = server_cpu, server_batches
        self._cpu = server_cpu() if server_cpu else None
        self._batches = server_batches() if server_batches else None
        self._client = time.process_time()
        self._start = time.perf_counter()

    def end(self) -> tuple[float, float, float | None, float | None]:
        wall_s = time.perf_counter() - self._start
        client_s = time.process_time() - self._client
        cpu_after = self._server_cpu() if self._server_cpu else None
        batches_after = self._server_batches() if self._server_batches else None
        server_s = None if cpu_after is None or self._cpu is None else cpu_after - self._cpu
        return wall_s, client_s, server_s, mean_batch(self._batches, batches_after)
