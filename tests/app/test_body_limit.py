"""The body limit stops reading a streamed (chunked) body at the limit, not after it all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from app.main import create_app
from tests.app.helpers import tiny_settings

CHUNK = 64 * 1024


def test_streamed_body_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    app = create_app(tiny_settings(tmp_path, max_body_bytes=256 * 1024))
    consumed = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(160):  # 10 MiB offered
            consumed += 1
            yield b"a" * CHUNK

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/predict", content=body(), headers={"content-type": "application/json"}
            )

    response = asyncio.run(scenario())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert consumed <= 256 * 1024 // CHUNK + 2  # stopped right after the limit


def test_declared_length_rejected_before_reading(tmp_path: Path) -> None:
    app = create_app(tiny_settings(tmp_path, max_body_bytes=4096))
    consumed = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal consumed
        consumed += 1
        yield b"a" * 8192

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"content-type": "application/json", "content-length": "8192"}
            return await client.post("/predict", content=body(), headers=headers)

    response = asyncio.run(scenario())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert consumed == 0
