"""Optional API key: off by default; when set, everything but docs, health and metrics needs it
(configurable), with a 401 `unauthorized` + WWW-Authenticate answered before any body is read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.security.auth import ApiKeyAuth, PathPolicy, presented_keys
from tests.app.helpers import MEDPIX_IMAGE, assert_error, b64, started_client, tiny_settings

KEY = "s3cret-key-for-tests"
PAYLOAD = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "axial ct"}


@pytest.fixture(scope="module")
def protected(tiny_bundle_dir: Path) -> Iterator[TestClient]:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], api_key=KEY)
    with started_client(settings) as client:
        yield client


def test_off_by_default(client: TestClient) -> None:
    assert client.post("/predict", json=PAYLOAD).status_code == 200
    assert client.get("/models").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json()["components"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/predict"),
        ("POST", "/predict/batch"),
        ("GET", "/models"),
        ("GET", "/models/medpix-student"),
        ("GET", "/no-such-route"),  # deny by default: no route discovery without the key
    ],
)
def test_protected_routes_need_the_key(protected: TestClient, method: str, path: str) -> None:
    response = protected.request(method, path, json=PAYLOAD)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="fusionserve"'


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer  {KEY} "},
        {"X-API-Key": KEY},
        {"X-API-Key": KEY, "Authorization": f"Bearer {KEY}"},
    ],
    ids=["bearer", "bearer-lowercase-spaces", "x-api-key", "both"],
)
def test_the_key_opens_them(protected: TestClient, headers: dict[str, str]) -> None:
    assert protected.post("/predict", json=PAYLOAD, headers=headers).status_code == 200
    assert protected.get("/models", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},  # the key, but not as a bearer token
        {"X-API-Key": KEY[:-1]},
        {"X-API-Key": KEY + "x"},
        {"X-API-Key": "wrong", "Authorization": f"Bearer {KEY}"},  # conflicting credentials
        {"X-API-Key": KEY, "Authorization": "Basic dXNlcjpwYXNz"},  # another scheme on top
        {"X-API-Key": KEY, "Authorization": "Bearer "},
    ],
)
def test_wrong_keys_are_refused(protected: TestClient, headers: dict[str, str]) -> None:
    response = protected.post("/predict", json=PAYLOAD, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert KEY not in response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]  # a key was sent


def test_health_docs_and_metrics_stay_open(protected: TestClient) -> None:
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs"):
        assert protected.get(path).status_code == 200, path


def test_openapi_declares_the_key(protected: TestClient) -> None:
    schema = protected.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    predict = schema["paths"]["/predict"]["post"]
    assert predict["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert "401" in predict["responses"]
    assert "security" not in schema["paths"]["/health/ready"]["get"]


def test_health_and_metrics_can_be_protected(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir,
        models=["medpix-student"],
        api_key=KEY,
        auth_protect_health=True,
        auth_protect_metrics=True,
    )
    with started_client(settings) as client:
        for path in ("/health/ready", "/metrics"):
            assert_error(client.get(path), 401, "unauthorized")
            assert client.get(path, headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/docs").status_code == 200


def test_refused_before_the_body_is_read(tmp_path: Path) -> None:
    app = create_app(tiny_settings(tmp_path, api_key=KEY))
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"x" * 65536

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"content-type": "application/json"}
            return await client.post("/predict", content=body(), headers=headers)

    assert_error(asyncio.run(scenario()), 401, "unauthorized")
    assert pulled == 0


def test_unauthorized_is_counted_as_a_rejection(protected: TestClient) -> None:
    def count() -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in protected.get("/metrics").text.splitlines()
            if line.startswith("fusionserve_rejections_total{") and 'reason="unauthorized"' in line
        )

    before = count()
    protected.get("/models")
    protected.post("/predict", json=PAYLOAD, headers={"X-API-Key": "nope"})
    assert count() - before == 2


def test_key_parsing() -> None:
    headers = [
        (b"authorization", b"Bearer  abc "),
        (b"x-api-key", b" def"),
        (b"authorization", b"Basic xyz"),
        (b"x-api-key", b""),
    ]
    assert presented_keys(headers) == [b"abc", b"def", b"", b""]
    auth = ApiKeyAuth(app=_never_called, api_key="abc", policy=PathPolicy(False, False))
    assert auth.accepts([b"abc"]) and auth.accepts([b"abc", b"abc"])
    assert not auth.accepts([]) and not auth.accepts([b"ab"]) and not auth.accepts([b"x", b"abc"])


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not reached")
