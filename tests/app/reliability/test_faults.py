"""Faults: a broken bundle is not ready (with its reason) while the others serve; a failing
inference fails only its own item; a dead batcher shows in readiness instead of hanging callers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.contract.manifest import MODEL_FILE, TOKENIZER_FILE, Manifest, sha256_file
from app.main import create_app
from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    assert_error,
    b64,
    encode,
    started_client,
    tiny_settings,
)
from tests.app.reliability.serving import GatedModel, serving, until

IMAGE = b64(MEDPIX_IMAGE.read_bytes())
BLACK = b64(encode(Image.new("RGB", (32, 32), (0, 0, 0))))


@pytest.fixture(scope="module")
def broken_bundles(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """medpix-student intact; medpix-teacher's tokenizer edited after export (checksum no longer
    matches); wound-student's model.onnx replaced by garbage whose sha256 the manifest lists
    (passes verification, fails when onnxruntime loads it)."""
    root = tmp_path_factory.mktemp("broken")
    for name in ("medpix-student", "medpix-teacher", "wound-student"):
        shutil.copytree(tiny_bundle_dir / name, root / name)
    with (root / "medpix-teacher" / TOKENIZER_FILE).open("a", encoding="utf-8") as handle:
        handle.write(" ")
    wound = root / "wound-student"
    (wound / MODEL_FILE).write_bytes(b"\x08\x07 this is not an onnx graph" * 50)
    manifest = Manifest.load(wound)
    manifest.files[MODEL_FILE] = sha256_file(wound / MODEL_FILE)
    manifest.save(wound)
    return root


def test_broken_bundles_are_not_ready_and_others_serve(broken_bundles: Path) -> None:
    with started_client(tiny_settings(broken_bundles)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        models = body["models"]
        assert models["medpix-student"] == {"ready": True, "state": "ready", "reason": None}
        assert models["medpix-teacher"]["state"] == "failed"
        assert "checksum mismatch" in models["medpix-teacher"]["reason"]
        assert TOKENIZER_FILE in models["medpix-teacher"]["reason"]
        assert models["wound-student"]["state"] == "failed"
        assert models["wound-student"]["reason"].startswith("load failed")
        assert any(r.startswith("medpix-teacher: checksum mismatch") for r in body["reasons"])

        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["medpix-teacher"]["reason"] == models["medpix-teacher"]["reason"]
        assert listed["wound-student"]["reason"] == models["wound-student"]["reason"]
        assert not listed["wound-student"]["ready"] and listed["medpix-student"]["ready"]

        ok = client.post("/predict", json={"image": IMAGE, "text": MEDPIX_TEXT})
        assert ok.status_code == 200 and ok.json()["model"]["name"] == "medpix-student"
        refused = client.post("/predict", json={"image": IMAGE, "text": "x", "model": "wound"})
        assert_error(refused, 503, "model_not_ready")
        assert "load failed" in refused.json()["error"]["message"]
        teacher = client.post(
            "/predict?model=medpix&role=teacher", json={"image": IMAGE, "text": ""}
        )
        assert_error(teacher, 503, "model_not_ready")


def test_failing_item_fails_alone_and_service_stays_up(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student"], max_delay_ms=0, max_batch_size=32
    )

    async def main() -> None:
        async with serving(settings) as (client, app):
            served = app.state.service.registry.models["medpix-student"]
            runner = GatedModel.install(app, "medpix-student")

            def post(image: str) -> Any:
                return client.post("/predict", json={"image": image, "text": MEDPIX_TEXT})

            first = asyncio.create_task(post(IMAGE))
            await until(runner.started.is_set)
            images = [IMAGE] * 3 + [BLACK] + [IMAGE] * 3
            rest = [asyncio.create_task(post(image)) for image in images]
            await until(lambda: served.active.batcher.depth == len(images))
            runner.gate.set()
            responses = await asyncio.gather(first, *rest)
            statuses = [r.status_code for r in responses]
            assert statuses == [200, 200, 200, 200, 500, 200, 200, 200]
            assert_error(responses[4], 500, "inference_failed")
            assert len(runner.sizes) > 2 and runner.sizes[1] == len(images)  # batched, then split
            assert (await client.get("/health/ready")).status_code == 200
            assert (await post(IMAGE)).status_code == 200

    asyncio.run(asyncio.wait_for(main(), 60))


def test_dead_batcher_shows_in_readiness(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(
        tiny_bundle_dir, models=["medpix-student", "wound-student"], max_delay_ms=0
    )

    async def main() -> None:
        async with serving(settings) as (client, app):
            batcher = app.state.service.registry.models["medpix-student"].active.batcher
            runner = GatedModel.install(app, "medpix-student")

            def post(**extra: str) -> Any:
                return client.post("/predict", json={"image": IMAGE, "text": "x", **extra})

            first = asyncio.create_task(post())
            await until(runner.started.is_set)
            queued = asyncio.create_task(post())
            await until(lambda: batcher.depth == 1)

            def broken_next_batch(free_since: float) -> list[Any]:
                raise RuntimeError("simulated bug in the batching loop")

            batcher._next_batch = broken_next_batch  # type: ignore[method-assign]  # the loop dies after this batch
            runner.gate.set()
            assert (await first).status_code == 200
            assert_error(await asyncio.wait_for(queued, 10), 503, "model_not_ready")  # no hang

            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            model = ready.json()["models"]["medpix-student"]
            assert model["ready"] is False
            assert model["reason"] == "batcher loop died: RuntimeError"
            assert ready.json()["models"]["wound-student"]["ready"] is True
            assert_error(await post(), 503, "model_not_ready")
            wound = await post(model="wound")
            assert wound.status_code == 200, wound.text

    asyncio.run(asyncio.wait_for(main(), 60))


def test_no_stack_trace_in_an_internal_error(tiny_bundle_dir: Path) -> None:
    """An unexpected exception is a bare 500 `internal_error`: no trace, type or message."""
    app = create_app(tiny_settings(tiny_bundle_dir, models=["medpix-student"]))

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("/srv/secret/path.py: internal detail")

    app.state.service.predict = explode
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/predict", json={"image": IMAGE, "text": "x"})
        assert_error(response, 500, "internal_error")
        assert response.json()["error"]["message"] == "internal error"
        assert "secret" not in response.text and "KeyError" not in response.text
        assert client.get("/health/live").status_code == 200


def test_client_errors_in_a_batch_are_not_logged_as_errors(
    tiny_bundle_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with started_client(tiny_settings(tiny_bundle_dir, models=["medpix-student"])) as client:
        items = [{"image": "", "text": "x"}, {"image": b64(b"%PDF-1.4"), "text": "x"}]
        with caplog.at_level("WARNING"):
            response = client.post("/predict/batch", json={"items": items})
        assert [r["status"] for r in response.json()["results"]] == [422, 415]
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
