"""Slow clients cannot hold the server: 300 clients trickling their bodies a byte at a time are
each answered 408 `request_timeout` and closed within BODY_TIMEOUT_S + 5 s, while normal
requests sent during the attack keep their p99 within 2x of their p99 without it (measured
in the same test, on the same server: ratios, not absolute times). A body slower than
BODY_MIN_RATE is cut before the timeout; one above it is not."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from app.body_deadline import MIN_RATE_GRACE_S, BodyDeadline
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64
from tests.app.servers import running_server

pytestmark = pytest.mark.slow

TIMEOUT_S = 5.0
ATTACKERS = 300
QUIET_REQUESTS = 150  # before the attack, and as many after it: the machine's own drift
BODY = json.dumps({"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT}).encode()


def head(port: int, length: int) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def trickle(port: int, interval_s: float, chunk: bytes, length: int) -> tuple[float, bytes]:
    """Send the headers, then `chunk` every `interval_s` until the server answers or closes:
    (seconds from the headers to the end, the answer's first line)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head(port, length))
    start = time.monotonic()
    answer = asyncio.create_task(reader.read(4096))
    sent = 0
    try:
        while not answer.done() and sent < length:
            await asyncio.wait({answer}, timeout=interval_s)
            if not answer.done():
                writer.write(chunk)
                sent += len(chunk)
        first = await asyncio.wait_for(answer, 30)
        if first:  # the answer, then the close
            while await asyncio.wait_for(reader.read(4096), 30):
                pass
        return time.monotonic() - start, first.split(b"\r\n", 1)[0]
    finally:
        writer.close()


async def normal_latencies(
    base: str, count: int, until: list[asyncio.Task[tuple[float, bytes]]] | None = None
) -> list[float]:
    """Latencies of `count` sequential requests, or of as many as complete while every task of
    `until` (the attack) is still running."""
    out: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while len(out) < count if until is None else not any(t.done() for t in until):
            start = time.perf_counter()
            response = await client.post(
                "/predict", content=BODY, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200, response.text
            if until is None or not any(t.done() for t in until):
                out.append(time.perf_counter() - start)
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def test_trickling_clients_are_closed_and_normal_requests_keep_their_p99(
    tiny_bundle_dir: Path,
) -> None:
    env = {"FUSIONSERVE_BODY_TIMEOUT_S": str(TIMEOUT_S), "FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        port = int(base.rsplit(":", 1)[1])

        async def scenario() -> tuple[list[float], list[float], list[tuple[float, bytes]]]:
            await normal_latencies(base, 10)  # warm the client and the server's pools
            quiet = await normal_latencies(base, QUIET_REQUESTS)
            attack = [
                asyncio.create_task(trickle(port, 1.0, b"x", 100_000)) for _ in range(ATTACKERS)
            ]
            await asyncio.sleep(0.5)  # every connection is open and trickling
            during = await normal_latencies(base, 0, until=attack)
            closed = await asyncio.gather(*attack)
            quiet += await normal_latencies(base, QUIET_REQUESTS)
            return quiet, during, closed

        quiet, during, closed = asyncio.run(scenario())
        ready = httpx.get(f"{base}/health/ready")
    ends = sorted(seconds for seconds, _ in closed)
    lines = {line for _, line in closed}
    print(
        f"\n{ATTACKERS} trickling clients closed after {ends[0]:.2f}-{ends[-1]:.2f}s "
        f"(timeout {TIMEOUT_S}s); normal p99 {p99(quiet) * 1000:.1f} ms quiet, "
        f"{p99(during) * 1000:.1f} ms under attack (x{p99(during) / p99(quiet):.2f}; "
        f"{len(quiet)} and {len(during)} requests)"
    )
    assert len(during) >= 50, "too few requests during the attack to judge its p99"
    assert lines == {b"HTTP/1.1 408 Request Timeout"}
    assert ends[-1] <= TIMEOUT_S + 5
    assert ready.status_code == 200
    assert p99(during) <= 2 * p99(quiet)


def test_a_body_below_the_minimum_rate_is_cut_before_the_timeout(tiny_bundle_dir: Path) -> None:
    env = {"FUSIONSERVE_BODY_TIMEOUT_S": "60", "FUSIONSERVE_BODY_MIN_RATE": "1000"}
    length = 14_000  # at 2,000 bytes/s: done in 7 s, past the grace, always above the rate
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        port = int(base.rsplit(":", 1)[1])

        async def both() -> list[tuple[float, bytes]]:
            slow = trickle(port, 0.5, b"x" * 50, length)  # 100 bytes/s
            fine = trickle(port, 0.25, b" " * 500, length)  # 2,000 bytes/s: whitespace JSON
            return list(await asyncio.gather(slow, fine))

        (slow_s, slow_line), (_, fine_line) = asyncio.run(both())
    assert slow_line == b"HTTP/1.1 408 Request Timeout"
    assert MIN_RATE_GRACE_S <= slow_s < MIN_RATE_GRACE_S + 2
    assert fine_line != b"HTTP/1.1 408 Request Timeout"  # read whole: an invalid-JSON 400


def test_the_deadline_is_the_timeout_or_the_minimum_rate_whichever_is_first() -> None:
    deadline = BodyDeadline(app=None, timeout_s=60, min_rate=1000).deadline  # type: ignore[arg-type]
    assert deadline(100.0, 0) == 100.0 + MIN_RATE_GRACE_S
    assert deadline(100.0, 10_000) == 100.0 + MIN_RATE_GRACE_S + 10
    assert deadline(100.0, 10**9) == 160.0
    unlimited = BodyDeadline(app=None, timeout_s=60, min_rate=0).deadline  # type: ignore[arg-type]
    assert unlimited(100.0, 0) == 160.0
