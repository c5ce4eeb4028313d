"""The soak's open loop: Poisson arrivals of the request mix at a fixed rate for a fixed time,
with the server process sampled from /proc and its own status counts read at each window's end.

Latency counts from each request's scheduled arrival (no coordinated omission, as in
`fusionserve.bench.open_loop`). Keep-alive connections are reused, most recently used first,
and closed once idle for IDLE_REOPEN_S (before the server would close them): the server's open
fds then follow the load, not the highest concurrency a burst reached. An oversized request gets a
fresh connection and closes it (the server does not read the body it refused); a disconnect
opens its own, sends part or all of its request, waits a moment and closes without reading.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from fusionserve.bench.soak_proc import ProcessSample, sample_process
from fusionserve.bench.soak_requests import RequestMix, SoakRequest
from fusionserve.bench.soak_windows import TRANSPORT_ERROR, WindowTally
from fusionserve.bench.wire import Connection, Target, request_bytes

IDLE_REOPEN_S = 2.0  # uvicorn closes keep-alive connections idle for 5 s
MAX_CONNECTIONS = 256  # past this, arrivals wait for a connection (in their latency)
CLOSE_AFTER_S = {"close mid-upload": 0.02, "close before answer": 0.005}
SETTLE_S = 1.0  # after the last answer, for the server to count the last disconnects
TRANSPORT_ERRORS = (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError)


@dataclass(frozen=True)
class SoakPlan:
    base: Target  # host and port of the server
    pid: int
    mix: RequestMix
    rate_per_s: float
    duration_s: float
    window_s: float = 60.0
    sample_s: float = 2.0
    seed: int = 0
    timeout_s: float = 60.0

    @property
    def windows(self) -> int:
        return max(1, math.ceil(self.duration_s / self.window_s - 1e-9))


class _Pool:
    """Idle keep-alive connections, most recently used first; the surplus a burst opened goes
    idle and is closed, so the connections held follow the load (not its peak so far)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.idle: deque[tuple[float, Connection]] = deque()  # oldest use on the left

    def take(self) -> Connection:
        now = time.monotonic()
        while self.idle and now - self.idle[0][0] >= IDLE_REOPEN_S:
            self.idle.popleft()[1].close()
        return self.idle.pop()[1] if self.idle else Connection(self.target)

    def give(self, connection: Connection) -> None:
        self.idle.append((time.monotonic(), connection))

    def close(self) -> None:
        """Once every request is answered, each connection is idle here."""
        while self.idle:
            self.idle.pop()[1].close()


def server_statuses(text: str) -> Counter[int]:
    """Answers so far by status, all routes, from the service's own /metrics."""
    counts: Counter[int] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "fusionserve_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[int(sample.labels["status"])] += int(sample.value)
    return counts


@dataclass
class SoakOutcome:
    """The windows, and the server at rest (no connection open) before and after them."""

    tallies: list[WindowTally]
    rest_before: ProcessSample
    rest_after: ProcessSample


class Soak:
    def __init__(self, plan: SoakPlan) -> None:
        self.plan = plan
        self.tallies = [WindowTally() for _ in range(plan.windows)]
        self.pool = _Pool(plan.base)
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.origin = time.perf_counter()
        self._seen: Counter[int] = Counter()

    def _window(self, t_s: float) -> WindowTally:
        index = min(int(t_s / self.plan.window_s), len(self.tallies) - 1)
        return self.tallies[max(index, 0)]

    async def _scrape(self) -> Counter[int]:
        metrics = Target(self.plan.base.host, self.plan.base.port, "/metrics")
        connection = Connection(metrics)  # one per scrape: a kept one would idle out between
        try:
            answer = await connection.exchange(request_bytes(metrics, None))
        finally:
            connection.close()
        return server_statuses(answer.body.decode())

    async def _count_server(self, tally: WindowTally) -> None:
        now = await self._scrape()
        tally.server.update(now - self._seen)
        self._seen = now

    async def _sampler(self) -> None:
        """Samples every sample_s; at each window's end, the server's counts for it."""
        window = 0
        while True:
            await asyncio.sleep(self.plan.sample_s)
            t_s = time.perf_counter() - self.origin
            now_window = min(int(t_s / self.plan.window_s), len(self.tallies))
            if now_window > window and window < len(self.tallies):
                await self._count_server(self.tallies[window])
                print(self.tallies[window].progress(window), file=sys.stderr, flush=True)
                window = now_window
            if t_s < self.plan.duration_s:  # not the drain after the last arrival
                self._window(t_s).samples.append(sample_process(self.plan.pid, t_s))

    async def _send(self, request: SoakRequest, scheduled: float) -> None:
        tally = self._window(scheduled - self.origin)
        if request.group == "disconnect":
            await self._disconnect(request)
            tally.sent_and_closed()
            return
        fresh = request.group == "oversized"
        async with self._slots:
            connection = Connection(self.plan.base) if fresh else self.pool.take()
            try:
                async with asyncio.timeout(self.plan.timeout_s):
                    answer = await connection.exchange(request.wire)
                status = answer.status
            except TRANSPORT_ERRORS:
                status = TRANSPORT_ERROR
            if fresh or status == TRANSPORT_ERROR:
                connection.close()
            else:
                self.pool.give(connection)
        tally.answered(request.kind, request.group, status, request.expected)
        if request.group == "valid" and status == 200:
            tally.valid_ms.append((time.perf_counter() - scheduled) * 1000.0)

    async def _disconnect(self, request: SoakRequest) -> None:
        try:
            _, writer = await asyncio.open_connection(self.plan.base.host, self.plan.base.port)
        except OSError:
            return
        try:
            writer.write(request.wire)
            await writer.drain()
            await asyncio.sleep(CLOSE_AFTER_S.get(request.kind, 0.0))
        except OSError:
            pass
        finally:
            writer.close()

    async def run(self) -> SoakOutcome:
        plan = self.plan
        rng = random.Random(plan.seed)
        self._seen = await self._scrape()
        await asyncio.sleep(SETTLE_S)
        rest_before = sample_process(plan.pid, 0.0)
        self.origin = time.perf_counter()
        self._window(0.0).samples.append(sample_process(plan.pid, 0.0))
        sampler = asyncio.create_task(self._sampler())
        tasks: set[asyncio.Task[None]] = set()
        offset = 0.0
        try:
            while offset < plan.duration_s:
                delay = self.origin + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._send(plan.mix.draw(rng), self.origin + offset))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                offset += rng.expovariate(plan.rate_per_s)
            await asyncio.gather(*list(tasks))
            await asyncio.sleep(SETTLE_S)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            self.pool.close()
        if not sampler.cancelled() and (error := sampler.exception()) is not None:
            raise error  # a sampler that died would leave the windows without samples
        await self._count_server(self.tallies[-1])
        await asyncio.sleep(SETTLE_S)  # the scrape's connection closes too
        rest_after = sample_process(plan.pid, time.perf_counter() - self.origin)
        return SoakOutcome(self.tallies, rest_before, rest_after)
