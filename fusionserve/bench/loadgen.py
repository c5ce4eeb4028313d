"""A bounded, closed-loop load generator: `concurrency` clients, a fixed number of requests.

Each client sends its next request as soon as its previous one is answered (closed loop), so
the offered load never exceeds what `concurrency` callers could produce and the run always ends
after exactly `requests` requests — comparable across servers and runs. Latency is measured in
the client, around the whole HTTP exchange, and only for 200 answers; anything else is counted
by status, never hidden.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np

from fusionserve.bench.server_metrics import mean_batch

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
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[int] = field(default_factory=Counter)
    phase_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    phase_count: int = 0

    def add_phases(self, response: httpx.Response) -> None:
        try:
            timing = response.json().get("timing_ms")
        except ValueError:
            return
        if isinstance(timing, dict) and all(k in timing for k in PHASES):
            for key in PHASES:
                self.phase_sums[key] += float(timing[key])
            self.phase_count += 1


async def _client_loop(
    client: httpx.AsyncClient,
    url: str,
    bodies: Sequence[Body],
    counter: itertools.count[int],
    total: int,
    tally: _Tally | None,
) -> None:
    while (index := next(counter)) < total:
        start = time.perf_counter()
        try:
            if bodies:
                body, content_type = bodies[index % len(bodies)]
                headers = {"content-type": content_type}
                response = await client.post(url, content=body, headers=headers)
            else:
                response = await client.get(url)
        except httpx.TransportError:
            if tally is not None:
                tally.failures[TRANSPORT_ERROR] += 1
            continue
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if tally is None:
            continue
        if response.status_code == 200:
            tally.latencies_ms.append(elapsed_ms)
            tally.add_phases(response)
        else:
            tally.failures[response.status_code] += 1


async def _drive(
    client: httpx.AsyncClient,
    url: str,
    bodies: Sequence[Body],
    concurrency: int,
    total: int,
    tally: _Tally | None,
) -> None:
    counter = itertools.count()
    await asyncio.gather(
        *(_client_loop(client, url, bodies, counter, total, tally) for _ in range(concurrency))
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
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as client:
        await _drive(client, url, bodies, concurrency, warmup, None)
        tally = _Tally()
        server_before = server_cpu() if server_cpu else None
        batches_before = server_batches() if server_batches else None
        client_before = time.process_time()
        start = time.perf_counter()
        await _drive(client, url, bodies, concurrency, requests, tally)
        wall_s = time.perf_counter() - start
        client_cpu_s = time.process_time() - client_before
        server_after = server_cpu() if server_cpu else None
        batches_after = server_batches() if server_batches else None
    phases = {}
    if tally.phase_count:
        phases = {k: tally.phase_sums[k] / tally.phase_count for k in PHASES}
    return LoadResult(
        concurrency=concurrency,
        requests=requests,
        wall_s=wall_s,
        latencies_ms=tuple(tally.latencies_ms),
        failures=dict(tally.failures),
        server_phases_ms=phases,
        client_cpu_s=client_cpu_s,
        server_cpu_s=(
            server_after - server_before
            if server_after is not None and server_before is not None
            else None
        ),
        mean_batch=mean_batch(batches_before, batches_after),
    )
