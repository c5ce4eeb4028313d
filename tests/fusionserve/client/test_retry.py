"""Retries: 429/503 are retried after the server's Retry-After (or a jittered backoff), refused
connections are retried, timeouts and other errors are not; the real app produces the 429s."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from fusionserve.client import NO_RETRY, ApiError, AsyncClient, Client, RequestTimedOut, RetryPolicy
from fusionserve.client import aio as aio_module
from fusionserve.client.retry import parse_retry_after
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, tiny_settings
from tests.app.reliability.serving import GatedModel, serving, until


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    assert parse_retry_after(formatdate(now + 5, usegmt=True), now=now) == pytest.approx(5, abs=1)
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_backoff_grows_with_jitter_and_respects_caps() -> None:
    policy = RetryPolicy(max_retries=5, backoff_s=1.0, max_backoff_s=4.0, max_wait_s=30.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        waits = [policy.delay(attempt, None) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert policy.delay(0, 7.0) == 7.0  # the server's Retry-After wins over the backoff
    assert policy.delay(0, 3600.0) == 30.0  # but never beyond max_wait_s
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_queue_full_is_retried_after_retry_after(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The real app with its model held: the queue (1 item) is full, the client's request gets
    429 + Retry-After: 1, waits exactly that long, and succeeds once the model moves again."""
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], queue_size=1, max_batch_size=1, max_delay_ms=0
    )
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def main() -> None:
        async with serving(settings) as (_, app):
            runner = GatedModel.install(app, "medpix-student")

            async def recorded_sleep(seconds: float) -> None:
                waits.append(seconds)
                runner.gate.set()  # the model frees up while the client waits
                await real_sleep(0.05)

            monkeypatch.setattr(aio_module, "sleep", recorded_sleep)
            transport = httpx.ASGITransport(app=app)
            async with (
                AsyncClient("http://test", transport=transport) as client,
                AsyncClient("http://test", transport=transport, retry=NO_RETRY) as impatient,
            ):
                running = asyncio.create_task(client.predict(MEDPIX_IMAGE, "running"))
                await until(runner.started.is_set)
                queued = asyncio.create_task(client.predict(MEDPIX_IMAGE, "queued"))
                batcher = app.state.service.registry.models["medpix-student"].active.batcher
                await until(lambda: batcher.depth == 1)
                with pytest.raises(ApiError) as refused:
                    await impatient.predict(MEDPIX_IMAGE, MEDPIX_TEXT)
                assert waits == []  # NO_RETRY: the 429 surfaced at once
                retried = await client.predict(MEDPIX_IMAGE, MEDPIX_TEXT)
                await asyncio.gather(running, queued)
        assert (refused.value.status, refused.value.code) == (429, "queue_full")
        assert refused.value.retry_after == 1.0
        assert retried.model.name == "medpix-student"

    with caplog.at_level(logging.WARNING, logger="fusionserve.client"):
        asyncio.run(main())
    assert waits == [1.0]
    assert "server answered 429 queue_full; retry 1 in 1.00s" in caplog.text


def test_503_is_retried_until_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that stays unavailable: max_retries + 1 attempts, then the last error."""
    attempts: list[str] = []

    def draining(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        body = {"error": {"code": "draining", "message": "the server is shutting down"}}
        return httpx.Response(503, json=body)

    waits: list[float] = []
    monkeypatch.setattr("fusionserve.client.sync.sleep", waits.append)
    retry = RetryPolicy(max_retries=2, backoff_s=0.2)
    client = Client("http://test", transport=httpx.MockTransport(draining), retry=retry)
    with client, pytest.raises(ApiError) as failed:
        client.models()
    assert len(attempts) == 3 and failed.value.code == "draining"
    assert len(waits) == 2 and 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_timeout_is_raised_and_not_retried(silent_server: str) -> None:
    start = time.monotonic()
    client = Client(silent_server, timeout=0.3, retry=RetryPolicy(max_retries=3))
    with client, pytest.raises(RequestTimedOut) as timed_out:
        client.predict(MEDPIX_IMAGE, "x")
    assert timed_out.value.code == "timeout"
    assert time.monotonic() - start < 2.0  # one attempt of 0.3 s, not four
