"""The real clients against a real `fusionserve serve` (uvicorn) process: tritonclient[http]
(readiness, metadata, infer with binary data on and off) and the kserve SDK's v2 REST client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT, b64
from tests.app.servers import running_server

httpclient = pytest.importorskip("tritonclient.http")
triton_utils = pytest.importorskip("tritonclient.utils")
kserve = pytest.importorskip("kserve")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_bundle_dir: Path) -> Iterator[str]:
    env = {"FUSIONSERVE_MODELS": "medpix-student,wound-student", "FUSIONSERVE_MAX_DELAY_MS": "5"}
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        yield base


def _expected(base: str, image: bytes, text: str, model: str) -> dict:
    body = {"image": b64(image), "text": text, "model": model}
    response = httpx.post(f"{base}/predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def _triton(base: str) -> Any:
    return httpclient.InferenceServerClient(url=base.removeprefix("http://"))


def test_tritonclient_health_and_metadata(server: str) -> None:
    client = _triton(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("medpix") and client.is_model_ready("wound-student")
    assert not client.is_model_ready("nope")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "model_repository"]
    meta = client.get_model_metadata("medpix")
    assert meta["name"] == "medpix-student"
    version = meta["versions"][0]
    assert client.is_model_ready("medpix-student", model_version=version)
    assert not client.is_model_ready("medpix-student", model_version="0")
    labels = json.loads(meta["parameters"]["labels_location"])
    assert len(labels) == 5
    with pytest.raises(triton_utils.InferenceServerException, match="unknown model"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer(server: str, binary: bool) -> None:
    client = _triton(server)
    images = [MEDPIX_IMAGE.read_bytes(), WOUND_IMAGE.read_bytes()]
    texts = [MEDPIX_TEXT, WOUND_TEXT]
    image_input = httpclient.InferInput("image", [2], "BYTES")
    text_input = httpclient.InferInput("text", [2], "BYTES")
    # JSON carries UTF-8 text only, so without binary data the image goes base64-encoded.
    raw = images if binary else [b64(i).encode() for i in images]
    image_input.set_data_from_numpy(np.array(raw, dtype=np.object_), binary_data=binary)
    text_input.set_data_from_numpy(
        np.array([t.encode() for t in texts], dtype=np.object_), binary_data=binary
    )
    outputs = [
        httpclient.InferRequestedOutput(name, binary_data=binary)
        for name in ("probs_location", "label_location", "label_modality", "modality_weights")
    ]
    result = client.infer("medpix", [image_input, text_input], outputs=outputs, request_id="t1")
    response = result.get_response()
    assert response["model_name"] == "medpix-student" and response["id"] == "t1"
    probs = result.as_numpy("probs_location")
    assert probs.dtype == np.float32 and probs.shape == (2, 5)
    labels = result.as_numpy("label_location")
    assert result.as_numpy("modality_weights").shape == (2, 2)
    for i, (image, text) in enumerate(zip(images, texts, strict=True)):
        expected = _expected(server, image, text, "medpix")
        location = expected["location"]
        assert probs[i] == pytest.approx(list(location["probabilities"].values()), abs=1e-6)
        label = labels[i]
        assert (label.decode() if isinstance(label, bytes) else label) == location["label"]


def test_tritonclient_infer_all_outputs_and_errors(server: str) -> None:
    client = _triton(server)
    image_input = httpclient.InferInput("image", [1], "BYTES")
    image_input.set_data_from_numpy(np.array([WOUND_IMAGE.read_bytes()], dtype=np.object_))
    text_input = httpclient.InferInput("text", [1], "BYTES")
    text_input.set_data_from_numpy(np.array([WOUND_TEXT.encode()], dtype=np.object_))
    # no outputs named: tritonclient asks for every output in binary
    result = client.infer("wound", [image_input, text_input])
    names = {o["name"] for o in result.get_response()["outputs"]}
    assert names == {"probs_type", "probs_severity", "label_type", "label_severity",
                     "modality_weights"}  # fmt: skip
    expected = _expected(server, WOUND_IMAGE.read_bytes(), WOUND_TEXT, "wound")
    assert result.as_numpy("label_severity")[0].decode() == expected["severity"]["label"]
    bad = httpclient.InferInput("image", [1], "BYTES")
    bad.set_data_from_numpy(np.array([b"not an image"], dtype=np.object_))
    with pytest.raises(triton_utils.InferenceServerException) as info:
        client.infer("wound", [bad, text_input])
    assert info.value.status() == "415"
    assert "image" in info.value.message()


def test_kserve_rest_client(server: str) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def run() -> None:
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
        try:
            assert await client.is_server_live(server)
            assert await client.is_server_ready(server)
            assert await client.is_model_ready(server, "medpix")
            assert not await client.is_model_ready(server, "nope")
            for binary in (False, True):
                image = InferInput("image", [1], "BYTES")
                text = InferInput("text", [1], "BYTES")
                if binary:
                    raw = np.array([MEDPIX_IMAGE.read_bytes()], dtype=np.object_)
                    image.set_data_from_numpy(raw, binary_data=True)
                    text.set_data_from_numpy(
                        np.array([MEDPIX_TEXT.encode()], dtype=np.object_), binary_data=True
                    )
                else:
                    image.data = [b64(MEDPIX_IMAGE.read_bytes())]
                    text.data = [MEDPIX_TEXT]
                request = InferRequest("medpix", [image, text], request_id=f"k{binary}")
                response = await client.infer(server, request, model_name="medpix")
                assert response.model_name == "medpix-student"
                outputs = {o.name: o for o in response.outputs}
                expected = _expected(server, MEDPIX_IMAGE.read_bytes(), MEDPIX_TEXT, "medpix")
                probs = outputs["probs_modality"].as_numpy()
                assert probs.shape == (1, 2)
                assert probs[0] == pytest.approx(
                    list(expected["modality"]["probabilities"].values()), abs=1e-6
                )
                label = outputs["label_location"].as_numpy()[0]
                label = label.decode() if isinstance(label, bytes) else label
                assert label == expected["location"]["label"]
            image = InferInput("image", [1], "BYTES", data=["%%%"])
            text = InferInput("text", [1], "BYTES", data=["x"])
            with pytest.raises(httpx.HTTPStatusError, match="not valid base64") as info:
                await client.infer(server, InferRequest("medpix", [image, text]), "medpix")
            assert info.value.response.status_code == 422
        finally:
            await client.close()

    asyncio.run(run())
