"""Concurrency through HTTP: health answers during inference, 429 on a full queue, 504 on an
expired deadline, and many concurrent callers each get their own result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app.settings import Settings
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64, tiny_settings
from tests.app.reliability.serving import serving, until
from tests.app.test_batcher import GatedRunner

IMAGE = b64(MEDPIX_IMAGE.read_bytes())


async def _post(client: httpx.AsyncClient, text: str) -> httpx.Response:
    return await client.post("/predict", json={"image": IMAGE, "text": text})


async def _hold_one(
    client: httpx.AsyncClient, registry: Any, text: str
) -> tuple[GatedRunner, asyncio.Task[httpx.Response]]:
    """Close a gate in front of medpix-student's real run_batch and send one request: on return
    it is running (the model busy), so the next requests queue behind it."""
    served = registry.models["medpix-student"]
    runner = GatedRunner(served.active.bundle.onnx)
    served.active.batcher._run_batch = runner
    runner.gate.clear()
    held = asyncio.create_task(_post(client, text))
    await until(runner.started.is_set)
    return runner, held


def _scenario(settings: Settings, body: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving(settings) as (client, app):
            registry = app.state.service.registry
            await asyncio.wait_for(body(client, registry), timeout=60)

    asyncio.run(main())


def test_health_answers_while_inference_runs(tiny_bundle_dir: Path) -> None:
    async def body(client: httpx.AsyncClient, registry: Any) -> None:
        runner, pending = await _hold_one(client, registry, "x")
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 200
        assert not pending.done()
        runner.gate.set()
        assert (await pending).status_code == 200

    _scenario(tiny_settings(tiny_bundle_dir, models=["medpix-student"]), body)


def test_queue_full_gives_429_with_retry_after(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], queue_size=2, max_delay_ms=0
    )

    async def body(client: httpx.AsyncClient, registry: Any) -> None:
        batcher = registry.models["medpix-student"].active.batcher
        runner, first = await _hold_one(client, registry, "a")
        queued = [asyncio.create_task(_post(client, t)) for t in ("b", "c")]
        await until(lambda: batcher.depth == 2)
        rejected = await _post(client, "d")
        assert rejected.status_code == 429
        assert rejected.headers["retry-after"] == "1"
        assert rejected.json()["error"]["code"] == "queue_full"
        runner.gate.set()
        assert [r.status_code for r in await asyncio.gather(first, *queued)] == [200, 200, 200]

    _scenario(settings, body)


def test_expired_deadline_gives_504(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], request_timeout_s=0.3, max_delay_ms=0
    )

    async def body(client: httpx.AsyncClient, registry: Any) -> None:
        runner, first = await _hold_one(client, registry, "a")
        late = asyncio.create_task(_post(client, "b"))
        await until(lambda: registry.models["medpix-student"].active.batcher.depth == 1)
        await asyncio.sleep(0.4)
        runner.gate.set()
        assert (await first).status_code == 200  # it was already running: it completes
        response = await late
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "deadline_exceeded"
        assert runner.sizes == [1]  # the expired item never ran

    _scenario(settings, body)


def test_concurrent_callers_get_their_own_results(tiny_bundle_dir: Path) -> None:
    texts = [f"{MEDPIX_TEXT[: 10 + 4 * i]}" for i in range(16)]

    async def body(client: httpx.AsyncClient, registry: Any) -> None:
        singles = [(await _post(client, t)).json()["predictions"] for t in texts]
        runner, first = await _hold_one(client, registry, "hold")
        tasks = [asyncio.create_task(_post(client, t)) for t in texts]
        await until(lambda: registry.models["medpix-student"].active.batcher.depth == len(texts))
        start = time.monotonic()
        runner.gate.set()
        responses = await asyncio.gather(first, *tasks)
        assert time.monotonic() - start < 30
        assert max(runner.sizes) > 1  # they really were batched together
        for single, response in zip(singles, responses[1:], strict=True):
            got = response.json()["predictions"]
            for task, pred in single.items():
                assert got[task]["label"] == pred["label"]
                assert abs(got[task]["probability"] - pred["probability"]) < 1e-5

    _scenario(tiny_settings(tiny_bundle_dir, models=["medpix-student"], max_delay_ms=0), body)
