"""Open-loop load: requests arrive as a Poisson process at a fixed rate, whatever the server does.

A closed loop slows down with the server, so it never shows what queueing does to callers who
do not wait for each other; an open loop does. Latency counts from each request's scheduled
arrival (not from when a connection was free to send it), so a server that falls behind is
charged for the wait — no coordinated omission. Arrivals reuse idle keep-alive connections and
open new ones when all are busy (up to `max_connections`; past that, arrivals wait for one, and
that wait is in their latency too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import numpy as np

from fusionserve.bench.loadgen import Body, LoadResult, Probe, Tally, exchange, wire_requests
from fusionserve.bench.wire import Connection, Target


async def run_open_loop(
    url: str,
    bodies: Sequence[Body],
    rate_per_s: float,
    requests: int,
    seed: int = 0,
    max_connections: int = 256,
    timeout_s: float = 120.0,
    server_cpu: Callable[[], float | None] | None = None,
    server_batches: Callable[[], tuple[float, float] | None] | None = None,
) -> LoadResult:
    """`requests` POSTs with exponential gaps of mean 1/rate (seeded: the same schedule for
    every server). `concurrency` in the result is the most connections that were open."""
    target = Target.parse(url)
    wire = wire_requests(target, bodies)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, size=requests)
    arrivals = np.cumsum(gaps) - gaps[0]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    opened: list[Connection] = []
    tally = Tally()

    async def one(index: int, scheduled: float) -> None:
        if idle.empty() and len(opened) < max_connections:
            opened.append(Connection(target))
            idle.put_nowait(opened[-1])
        connection = await idle.get()
        try:
            await exchange(connection, wire[index % len(wire)], timeout_s, tally, scheduled)
        finally:
            idle.put_nowait(connection)

    probe = Probe(server_cpu, server_batches)
    origin = time.perf_counter()
    tasks = []
    try:
        for index, offset in enumerate(arrivals):
            delay = origin + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index, origin + float(offset))))
        await asyncio.gather(*tasks)
        measured = probe.end()
    finally:
        for connection in opened:
            connection.close()
    return tally.result(len(opened), requests, measured)
