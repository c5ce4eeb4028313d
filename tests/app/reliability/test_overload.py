"""Overload: a burst far beyond queue capacity gets 429 + Retry-After for the excess, 200 for the
rest, never more work held than the bounds allow; expired deadlines get 504 without running."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.app.helpers import MEDPIX_IMAGE, b64, tiny_settings
from tests.app.reliability.serving import GatedModel, serving, until

IMAGE = b64(MEDPIX_IMAGE.read_bytes())
BURST = 120
QUEUE_SIZE = 8
MAX_BATCH = 4


def _post(client: httpx.AsyncClient, i: int) -> Any:
    return client.post("/predict", json={"image": IMAGE, "text": f"request {i}"})


def test_burst_beyond_capacity_sheds_load(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir,
        models=["medpix-student"],
        queue_size=QUEUE_SIZE,
        max_batch_size=MAX_BATCH,
        max_delay_ms=0,
    )

    async def main() -> None:
        async with serving(settings) as (client, app):
            batcher = app.state.service.registry.models["medpix-student"].active.batcher
            pool = app.state.service.pool
            runner = GatedModel.install(app, "medpix-student")
            peak = {"queued": 0, "preprocessing": 0}
            sampling = True

            async def sample() -> None:
                while sampling:
                    peak["queued"] = max(peak["queued"], batcher.depth)
                    peak["preprocessing"] = max(peak["preprocessing"], pool.pending)
                    await asyncio.sleep(0)

            sampler = asyncio.create_task(sample())
            tasks = [asyncio.create_task(_post(client, i)) for i in range(BURST)]
            await until(runner.started.is_set)
            # Steady state with the model held: every request is answered or parked in the queue.
            await until(
                lambda: (
                    pool.pending == 0
                    and sum(t.done() for t in tasks) + batcher.depth + MAX_BATCH >= BURST
                )
            )
            early = [t.result() for t in tasks if t.done()]
            assert early and all(r.status_code == 429 for r in early)
            runner.gate.set()
            responses = await asyncio.gather(*tasks)
            sampling = False
            await sampler

            statuses = Counter(r.status_code for r in responses)
            assert set(statuses) == {200, 429}, statuses
            for response in responses:
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "1"
                    assert response.json()["error"]["code"] == "queue_full"
            # Work admitted is bounded by the queue and the batch in flight, not by the burst.
            assert statuses[200] <= QUEUE_SIZE + MAX_BATCH
            assert statuses[429] >= BURST - QUEUE_SIZE - MAX_BATCH
            assert peak["queued"] <= QUEUE_SIZE
            assert peak["preprocessing"] <= pool.max_pending
            # Nothing crashed: ready, and a fresh request is served.
            assert (await client.get("/health/ready")).status_code == 200
            assert (await _post(client, -1)).status_code == 200

    asyncio.run(asyncio.wait_for(main(), 90))


def test_deadlines_give_504_without_running(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir,
        models=["medpix-student"],
        request_timeout_s=0.5,
        max_batch_size=MAX_BATCH,
        max_delay_ms=0,
    )

    async def main() -> None:
        async with serving(settings) as (client, app):
            batcher = app.state.service.registry.models["medpix-student"].active.batcher
            runner = GatedModel.install(app, "medpix-student")
            first = asyncio.create_task(_post(client, 0))
            await until(runner.started.is_set)
            late = [asyncio.create_task(_post(client, i)) for i in range(1, 11)]
            await until(lambda: batcher.depth == len(late))
            await asyncio.sleep(0.6)  # every queued deadline passes while the model is held
            runner.gate.set()
            assert (await first).status_code == 200
            for response in await asyncio.gather(*late):
                assert response.status_code == 504
                assert response.json()["error"]["code"] == "deadline_exceeded"
            assert runner.sizes == [1]  # expired items never reached the model
            assert (await client.get("/health/ready")).status_code == 200
            assert (await _post(client, 99)).status_code == 200

    asyncio.run(asyncio.wait_for(main(), 60))
