"""Client and AsyncClient against a real server: every image form, typed results equal to the
raw JSON, batch items failing on their own, the server's error codes, and the API key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fusionserve.client import (
    ApiError,
    AsyncClient,
    Client,
    ConnectionFailed,
    InvalidInput,
    Prediction,
    RetryPolicy,
)
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT
from tests.app.servers import free_port, running_server

MEDPIX_TASKS = {"modality", "location"}


def raw_answer(base: str, image: Path, text: str, model: str) -> dict:
    files = {"image": (image.name, image.read_bytes())}
    response = httpx.post(f"{base}/predict", files=files, data={"text": text, "model": model})
    assert response.status_code == 200
    return response.json()


def test_predict_accepts_path_bytes_and_pil(server_url: str) -> None:
    expected = raw_answer(server_url, MEDPIX_IMAGE, MEDPIX_TEXT, "medpix")
    with Client(server_url) as client:
        results = [
            client.predict(MEDPIX_IMAGE, MEDPIX_TEXT, model="medpix"),
            client.predict(str(MEDPIX_IMAGE), MEDPIX_TEXT, model="medpix"),
            client.predict(MEDPIX_IMAGE.read_bytes(), MEDPIX_TEXT, model="medpix"),
        ]
        # PNG → PIL → PNG is lossless, so the server sees the same pixels
        pil = client.predict(Image.open(MEDPIX_IMAGE), MEDPIX_TEXT, model="medpix")
    for result in [*results, pil]:
        assert isinstance(result, Prediction)
        assert result.model.name == "medpix-student" and result.model.role == "student"
        assert set(result.predictions) == MEDPIX_TASKS
        for task, out in result.predictions.items():
            assert out.label == expected["predictions"][task]["label"]
            assert out.probabilities == pytest.approx(
                expected["predictions"][task]["probabilities"]
            )
        assert result.modality_weights is not None and set(result.modality_weights) == {
            "image",
            "text",
        }
        assert set(result.timing_ms) == {"queue", "preprocess", "inference", "total"}
        assert result.request_id and len(result.request_id) == 32
    assert results[0].labels == {t: p["label"] for t, p in expected["predictions"].items()}


def test_role_and_bundle_selection(server_url: str) -> None:
    with Client(server_url) as client:
        teacher = client.predict(MEDPIX_IMAGE, MEDPIX_TEXT, model="medpix", role="teacher")
        wound = client.predict(WOUND_IMAGE, WOUND_TEXT, model="wound-student")
    assert teacher.model.name == "medpix-teacher" and teacher.model.role == "teacher"
    assert wound.model.task_set == "wound" and set(wound.predictions) == {"type", "severity"}


def test_batch_items_succeed_or_fail_on_their_own(server_url: str) -> None:
    with Client(server_url) as client:
        items = client.predict_batch(
            [(MEDPIX_IMAGE, MEDPIX_TEXT), (b"not an image", "x"), (MEDPIX_IMAGE, "")],
            model="medpix",
        )
    assert [i.index for i in items] == [0, 1, 2]
    assert items[0].ok and items[2].ok and not items[1].ok
    assert items[1].error is not None and items[1].error.code == "unsupported_image"
    assert items[1].status == 415 and items[1].prediction is None
    assert items[0].prediction is not None and set(items[0].prediction.predictions) == MEDPIX_TASKS


def test_errors_carry_the_servers_code(server_url: str) -> None:
    with Client(server_url) as client:
        with pytest.raises(ApiError) as unknown:
            client.predict(MEDPIX_IMAGE, "x", model="no-such-model")
        with pytest.raises(ApiError) as too_many:
            client.predict_batch([(MEDPIX_IMAGE, "x")] * 9)
        with pytest.raises(InvalidInput):
            client.predict(MEDPIX_IMAGE.with_name("missing.png"), "x")
        with pytest.raises(InvalidInput):
            client.predict(12345, "x")  # type: ignore[arg-type]
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_model")
    assert unknown.value.request_id and "no-such-model" in unknown.value.message
    assert (too_many.value.status, too_many.value.code) == (422, "too_many_items")


def test_models_and_ready(server_url: str) -> None:
    with Client(server_url) as client:
        assert client.ready()
        models = {m.name: m for m in client.models()}
    assert models["medpix-student"].ready and "medpix" in models["medpix-student"].aliases
    assert models["medpix-student"].tasks["modality"] == ["CT", "MR"]


def test_async_client_runs_requests_concurrently(server_url: str) -> None:
    texts = [f"{MEDPIX_TEXT} case {i}" for i in range(8)]

    async def main() -> list[Prediction]:
        async with AsyncClient(server_url) as client:
            assert await client.ready()
            assert {m.name for m in await client.models()} >= {"medpix-student"}
            batch = await client.predict_batch([(MEDPIX_IMAGE, t) for t in texts[:2]])
            assert all(item.ok for item in batch)
            return await asyncio.gather(*(client.predict(MEDPIX_IMAGE, t) for t in texts))

    results = asyncio.run(main())
    assert len(results) == 8 and all(set(r.predictions) == MEDPIX_TASKS for r in results)
    assert len({r.request_id for r in results}) == 8


def test_api_key_is_sent_as_bearer(tiny_bundle_dir: Path) -> None:
    env = {"FUSIONSERVE_API_KEY": "s3cret-key", "FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        with Client(base) as anonymous, pytest.raises(ApiError) as refused:
            anonymous.predict(MEDPIX_IMAGE, MEDPIX_TEXT)
        with Client(base, api_key="wrong") as wrong, pytest.raises(ApiError) as rejected:
            wrong.models()
        with Client(base, api_key="s3cret-key") as client:
            assert client.predict(MEDPIX_IMAGE, MEDPIX_TEXT).model.name == "medpix-student"
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert "API key is required" in refused.value.message
    assert rejected.value.code == "unauthorized" and "not valid" in rejected.value.message


def test_unreachable_server_is_a_connection_error() -> None:
    retry = RetryPolicy(max_retries=1, backoff_s=0.01)
    client = Client(f"http://127.0.0.1:{free_port()}", retry=retry)
    with client, pytest.raises(ConnectionFailed) as failed:
        client.predict(MEDPIX_IMAGE, "x")
    assert failed.value.code == "connection_error"
