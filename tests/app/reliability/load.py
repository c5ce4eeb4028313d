"""Concurrent clients over real HTTP for the hot-swap and fault tests: each answer is kept with
when it was sent and received, its status, error code and the version that computed it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT, b64

INPUTS = {
    "medpix-student": (b64(MEDPIX_IMAGE.read_bytes()), MEDPIX_TEXT),
    "wound-student": (b64(WOUND_IMAGE.read_bytes()), WOUND_TEXT),
}


@dataclass(frozen=True)
class Answer:
    model: str
    sent: float  # time.monotonic()
    received: float
    status: int
    code: str  # the error code; '' for a 200
    version: str  # the version the answer names; '' for an error
    probabilities: dict[str, Any]


async def ask(client: httpx.AsyncClient, model: str) -> Answer:
    image, text = INPUTS[model]
    sent = time.monotonic()
    response = await client.post("/predict", json={"image": image, "text": text, "model": model})
    body = response.json()
    ok = response.status_code == 200
    return Answer(
        model,
        sent,
        time.monotonic(),
        response.status_code,
        "" if ok else body["error"]["code"],
        body["model"]["version"] if ok else "",
        {t: p["probabilities"] for t, p in body["predictions"].items()} if ok else {},
    )


async def hammer(
    base: str, models: Sequence[str], concurrency: int, stop: asyncio.Event
) -> list[Answer]:
    """`concurrency` clients, each asking the models in turn until `stop` is set."""
    answers: list[Answer] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker(i: int) -> None:
            n = i
            while not stop.is_set():
                answers.append(await ask(client, models[n % len(models)]))
                n += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return answers


async def for_seconds(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()
