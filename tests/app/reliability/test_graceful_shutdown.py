"""Graceful shutdown: SIGTERM → readiness 503 at once → every in-flight request answered 200 →
the process exits within DRAIN_TIMEOUT_S. In-process (the hand-over logic) and with a real
`fusionserve serve` (uvicorn) process and 50 requests in flight."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, assert_error, b64, tiny_settings
from tests.app.reliability.serving import GatedModel, serving, until
from tests.app.servers import running_server

IMAGE = b64(MEDPIX_IMAGE.read_bytes())
IN_FLIGHT = 50


class UvicornStandIn:
    """Stands in for uvicorn's SIGTERM handler: records what the drain hands over."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)


@contextmanager
def recorded_sigterm() -> Iterator[UvicornStandIn]:
    stand_in = UvicornStandIn()
    original = signal.signal(signal.SIGTERM, stand_in)
    try:
        yield stand_in
    finally:
        signal.signal(signal.SIGTERM, original)


def _post(client: httpx.AsyncClient, text: str = MEDPIX_TEXT) -> Any:
    return client.post("/predict", json={"image": IMAGE, "text": text})


def test_sigterm_drains_in_process(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], max_delay_ms=0, drain_timeout_s=120
    )

    async def main(handed_over: list[int]) -> None:
        async with serving(settings) as (client, app):
            drain = app.state.drain
            model = GatedModel.install(app, "medpix-student")
            held = [asyncio.create_task(_post(client, f"held {i}")) for i in range(5)]
            await until(lambda: model.started.is_set() and drain.in_flight == 5)
            assert (await client.get("/health/ready")).status_code == 200

            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: drain.draining)
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["draining"] is True
            assert "server is draining" in ready.json()["reasons"]
            late = asyncio.create_task(_post(client, "arrived during the drain"))
            await until(lambda: drain.in_flight == 6)
            await asyncio.sleep(0.05)
            assert handed_over == []  # requests in flight: uvicorn is not told yet

            model.gate.set()
            responses = await asyncio.gather(*held, late)
            assert [r.status_code for r in responses] == [200] * 6
            assert all(r.headers["connection"] == "close" for r in responses)
            await until(lambda: handed_over == [signal.SIGTERM])
            assert drain.in_flight == 0

            drain.lifecycle.stop()  # what the lifespan's shutdown does: new work is refused
            refused = await _post(client)
            assert_error(refused, 503, "draining")
            assert refused.headers["retry-after"] == "1"
            assert (await client.get("/health/live")).status_code == 200

    with recorded_sigterm() as stand_in:
        asyncio.run(asyncio.wait_for(main(stand_in.received), 60))
        assert signal.getsignal(signal.SIGTERM) is stand_in  # ours removed, the previous kept


def test_second_sigterm_hands_over_at_once(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], drain_timeout_s=120)

    async def main(handed_over: list[int]) -> None:
        async with serving(settings) as (client, app):
            drain = app.state.drain
            model = GatedModel.install(app, "medpix-student")
            held = asyncio.create_task(_post(client))
            await until(lambda: model.started.is_set())
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: drain.draining)
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: handed_over == [signal.SIGTERM])
            assert drain.in_flight == 1
            model.gate.set()
            assert (await held).status_code == 200

    with recorded_sigterm() as stand_in:
        asyncio.run(asyncio.wait_for(main(stand_in.received), 60))


# -- a real uvicorn process -------------------------------------------------------------------


def server(
    bundle_dir: Path, drain_timeout_s: float
) -> AbstractContextManager[tuple[subprocess.Popen[bytes], str]]:
    """One model, with the drain timeout under test."""
    env = {
        "FUSIONSERVE_MODELS": "medpix-student",
        "FUSIONSERVE_DRAIN_TIMEOUT_S": str(drain_timeout_s),
    }
    return running_server(bundle_dir, env=env)


def _in_flight(metrics_text: str) -> float:
    match = re.search(r"^fusionserve_http_requests_in_flight (\S+)$", metrics_text, re.M)
    return float(match.group(1)) if match else -1.0


async def _slow_upload(
    release: asyncio.Event, started: list[int], text: str
) -> AsyncIterator[bytes]:
    """A JSON body sent in two parts: the request is in flight until `release` is set."""
    body = json.dumps({"image": IMAGE, "text": text}).encode()
    yield body[: len(body) // 2]
    started.append(1)
    await release.wait()
    yield body[len(body) // 2 :]


@pytest.mark.slow
def test_sigterm_with_50_requests_in_flight(tiny_bundle_dir: Path) -> None:
    drain_timeout_s = 30.0
    with server(tiny_bundle_dir, drain_timeout_s) as (proc, base):

        async def scenario() -> tuple[float, list[httpx.Response]]:
            release, started = asyncio.Event(), []
            limits = httpx.Limits(max_connections=IN_FLIGHT + 10)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                uploads = [
                    asyncio.create_task(
                        client.post(
                            "/predict",
                            content=_slow_upload(release, started, f"{MEDPIX_TEXT} {i}"),
                            headers={"content-type": "application/json"},
                        )
                    )
                    for i in range(IN_FLIGHT)
                ]
                await until(lambda: len(started) == IN_FLIGHT)
                async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
                    while _in_flight((await probe.get("/metrics")).text) < IN_FLIGHT:
                        await asyncio.sleep(0.02)
                    signalled = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
                    ready = await probe.get("/health/ready")
                    assert ready.status_code == 503, ready.text
                    assert ready.json()["draining"] is True
                    during = await probe.post("/predict", json={"image": IMAGE, "text": "new"})
                    assert during.status_code == 200, during.text  # still served while listening
                    assert "server" not in during.headers
                release.set()
                return signalled, list(await asyncio.gather(*uploads))

        signalled, responses = asyncio.run(asyncio.wait_for(scenario(), 90))
        assert [r.status_code for r in responses] == [200] * IN_FLIGHT
        assert all(set(r.json()["predictions"]) == {"modality", "location"} for r in responses)
        returncode = proc.wait(timeout=drain_timeout_s)
        exited_after = time.monotonic() - signalled
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert exited_after < drain_timeout_s
    assert returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output


@pytest.mark.slow
def test_stuck_request_cannot_hold_the_process_past_the_drain_timeout(
    tiny_bundle_dir: Path,
) -> None:
    drain_timeout_s = 2.0
    with server(tiny_bundle_dir, drain_timeout_s) as (proc, base):

        async def scenario() -> float:
            never, started = asyncio.Event(), []
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                stuck = asyncio.create_task(
                    client.post(
                        "/predict",
                        content=_slow_upload(never, started, "never finished"),
                        headers={"content-type": "application/json"},
                    )
                )
                while _in_flight((await client.get("/metrics")).text) < 1:
                    await asyncio.sleep(0.02)
                signalled = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await until(lambda: proc.poll() is not None)
                exited_after = time.monotonic() - signalled
                never.set()
                with pytest.raises(httpx.TransportError):
                    await stuck  # its connection died with the process
                return exited_after

        exited_after = asyncio.run(asyncio.wait_for(scenario(), 60))
        returncode = proc.wait(timeout=1)
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert returncode == 1, output  # forced exit, and it says so
    assert "drain timeout" in output
    assert drain_timeout_s <= exited_after < drain_timeout_s + 5
