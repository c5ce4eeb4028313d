"""In-process serving for async reliability tests: the real app, lifespan running, models loaded,
an httpx client over ASGI, and a gate in front of one model's real graph."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import httpx
import numpy as np
from fastapi import FastAPI

from app.main import create_app
from app.preprocess import PreparedInputs
from app.runtime import OnnxModel
from app.settings import Settings


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        while not app.state.service.registry.loading_done:
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app


class GatedModel:
    """The model's real graph behind a gate (so tests reach queue states without timing); any
    batch holding an all-black image raises, as a runtime failure on one input would."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.gate = threading.Event()
        self.started = threading.Event()
        self.sizes: list[int] = []

    @classmethod
    def install(cls, app: FastAPI, name: str) -> GatedModel:
        served = app.state.service.registry.models[name]
        gated = cls(served.active.bundle.onnx)
        served.active.batcher._run_batch = gated
        return gated

    def __call__(self, items: Sequence[PreparedInputs]) -> list[dict[str, np.ndarray]]:
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        self.sizes.append(len(items))
        if any(float(item.pixel_values.max()) <= -1.0 for item in items):
            raise RuntimeError("simulated onnxruntime failure")
        return self.model.run_batch(items)


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.002)
