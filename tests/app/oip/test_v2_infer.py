"""POST /v2/models/{name}/infer in-process over real tiny bundles: JSON and binary tensors,
the same numbers as /predict, one batch for N items, and the error matrix."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    WOUND_IMAGE,
    WOUND_TEXT,
    b64,
    started_client,
    tiny_settings,
)
from tests.app.oip.v2_requests import (
    assert_oip_error,
    binary_request,
    bytes_tensor,
    json_request,
    split_response,
)

INFER = "/v2/models/medpix/infer"


def _outputs(body: dict) -> dict[str, dict]:
    return {o["name"]: o for o in body["outputs"]}


def _predict(client: TestClient, image: bytes, text: str, model: str) -> dict:
    response = client.post("/predict", json={"image": b64(image), "text": text, "model": model})
    assert response.status_code == 200, response.text
    return response.json()


def test_json_infer_matches_predict(client: TestClient) -> None:
    images = [MEDPIX_IMAGE.read_bytes(), WOUND_IMAGE.read_bytes(), MEDPIX_IMAGE.read_bytes()]
    texts = [MEDPIX_TEXT, WOUND_TEXT, ""]
    response = client.post(INFER, json=json_request(images, texts, id="req-7"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model_name"] == "medpix-student" and body["id"] == "req-7"
    assert body["model_version"] == client.get("/v2/models/medpix").json()["versions"][0]
    out = _outputs(body)
    assert [o["name"] for o in body["outputs"]] == [
        "probs_modality", "probs_location", "label_modality", "label_location", "modality_weights",
    ]  # fmt: skip
    for i, (image, text) in enumerate(zip(images, texts, strict=True)):
        expected = _predict(client, image, text, "medpix")
        for task, pred in expected["predictions"].items():
            probs = out[f"probs_{task}"]
            assert probs["datatype"] == "FP32" and probs["shape"] == [3, len(pred["probabilities"])]
            row = np.reshape(probs["data"], probs["shape"])[i]
            assert row == pytest.approx(list(pred["probabilities"].values()), abs=1e-6)
            assert out[f"label_{task}"]["data"][i] == pred["label"]
        weights = np.reshape(out["modality_weights"]["data"], (3, 2))[i]
        assert weights == pytest.approx(
            [expected["modality_weights"]["image"], expected["modality_weights"]["text"]], abs=1e-6
        )


def test_binary_inputs_and_outputs(client: TestClient) -> None:
    image = WOUND_IMAGE.read_bytes()
    body, headers = binary_request(
        [image, image], [WOUND_TEXT.encode(), b""], parameters={"binary_data_output": True}
    )
    response = client.post("/v2/models/wound-student/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    header, blob = split_response(
        response.content, response.headers.get("inference-header-content-length")
    )
    offset, decoded = 0, {}
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        decoded[output["name"]] = blob[offset : offset + size]
        offset += size
    assert offset == len(blob) and "data" not in header["outputs"][0]
    probs = np.frombuffer(decoded["probs_type"], dtype="<f4").reshape(2, -1)
    expected = _predict(client, image, WOUND_TEXT, "wound")["predictions"]["type"]
    assert probs[0] == pytest.approx(list(expected["probabilities"].values()), abs=1e-6)
    labels = decoded["label_type"]
    (first,) = struct.unpack_from("<I", labels)
    assert labels[4 : 4 + first].decode() == expected["label"]


def test_requested_outputs_mix_binary_and_json(client: TestClient) -> None:
    image = MEDPIX_IMAGE.read_bytes()
    request = json_request(
        [image],
        [MEDPIX_TEXT],
        outputs=[
            {"name": "label_location"},
            {"name": "probs_modality", "parameters": {"binary_data": True}},
        ],
    )
    response = client.post(INFER, json=request)
    assert response.status_code == 200, response.text
    header, blob = split_response(
        response.content, response.headers["inference-header-content-length"]
    )
    assert [o["name"] for o in header["outputs"]] == ["label_location", "probs_modality"]
    assert header["outputs"][0]["data"] == [
        _predict(client, image, MEDPIX_TEXT, "medpix")["predictions"]["location"]["label"]
    ]
    assert len(blob) == header["outputs"][1]["parameters"]["binary_data_size"] == 2 * 4


def test_items_of_one_request_run_as_one_batch(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], max_delay_ms=200.0)
    with started_client(settings) as c:
        images = [MEDPIX_IMAGE.read_bytes()] * 4
        response = c.post(INFER, json=json_request(images, [MEDPIX_TEXT] * 4))
        assert response.status_code == 200, response.text
        metrics = c.get("/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("fusionserve_batch_size_sum"))
    # warm-up runs bypass the batcher: the only batches are this request's, and they hold all 4
    assert float(line.rsplit(" ", 1)[1]) == 4.0
    count = next(m for m in metrics.splitlines() if m.startswith("fusionserve_batch_size_count"))
    assert float(count.rsplit(" ", 1)[1]) == 1.0


def test_gzip_request_body(client: TestClient) -> None:
    body = json.dumps(json_request([MEDPIX_IMAGE.read_bytes()], [MEDPIX_TEXT])).encode()
    response = client.post(
        INFER,
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text


def _tensor(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "shape": [1], "datatype": "BYTES", **fields}


IMG = b64(MEDPIX_IMAGE.read_bytes())
BAD_JSON: list[tuple[str, object, int, str]] = [
    ("no inputs", {"inputs": []}, 422, "missing_field"),
    ("not an object", [1, 2], 422, "invalid_request"),
    ("unknown input", {"inputs": [_tensor("pixels", data=["x"])]}, 422, "invalid_request"),
    ("text missing", {"inputs": [_tensor("image", data=[IMG])]}, 422, "missing_field"),
    ("wrong datatype", {"inputs": [_tensor("image", data=[IMG]),
                                   _tensor("text", datatype="FP32", data=[1.0])]},
     422, "invalid_request"),
    ("shape vs data", {"inputs": [_tensor("image", data=[IMG, IMG]), _tensor("text", data=["a"])]},
     422, "invalid_request"),
    ("N differs", {"inputs": [_tensor("image", shape=[2], data=[IMG, IMG]),
                              _tensor("text", data=["a"])]}, 422, "invalid_request"),
    ("shape 3-d", {"inputs": [_tensor("image", shape=[1, 1, 1], data=[IMG]),
                              _tensor("text", data=["a"])]}, 422, "invalid_request"),
    ("shape as strings", {"inputs": [_tensor("image", shape=["1"], data=[IMG]),
                                     _tensor("text", data=["a"])]}, 422, "invalid_request"),
    ("image not base64", {"inputs": [_tensor("image", data=["%%%"]), _tensor("text", data=["a"])]},
     422, "invalid_base64"),
    ("image a number", {"inputs": [_tensor("image", data=[5]), _tensor("text", data=["a"])]},
     422, "invalid_request"),
    ("not an image", {"inputs": [_tensor("image", data=[b64(b"hello")]),
                                 _tensor("text", data=["a"])]}, 415, "unsupported_image"),
    ("text too long", {"inputs": [_tensor("image", data=[IMG]), _tensor("text", data=["a" * 201])]},
     422, "text_too_long"),
    ("too many items", {"inputs": [_tensor("image", shape=[5], data=[IMG] * 5),
                                   _tensor("text", shape=[5], data=["a"] * 5)]},
     422, "too_many_items"),
    ("unknown output", {"inputs": [_tensor("image", data=[IMG]), _tensor("text", data=["a"])],
                        "outputs": [{"name": "probs_nope"}]}, 422, "invalid_request"),
    ("binary flag not bool", {"inputs": [_tensor("image", data=[IMG]), _tensor("text", data=["a"])],
                              "parameters": {"binary_data_output": "yes"}}, 422, "invalid_request"),
    ("no data, no size", {"inputs": [_tensor("image"), _tensor("text", data=["a"])]},
     422, "invalid_request"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code"), [c[1:] for c in BAD_JSON],
                         ids=[c[0] for c in BAD_JSON])  # fmt: skip
def test_bad_json_requests(client: TestClient, body: object, status: int, code: str) -> None:
    assert_oip_error(client.post(INFER, json=body), status, code)


BAD_BODIES = [  # (body, headers, status, code)
    (b"{nope", {"Content-Type": "application/json"}, 400, "invalid_json"),
    (b"x", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    (b"x", {"Content-Encoding": "br"}, 415, "unsupported_media_type"),
    (b"not gzip", {"Content-Encoding": "gzip"}, 400, "bad_request"),
]


def test_bad_bodies_and_framing(client: TestClient) -> None:
    for content, headers, status, code in BAD_BODIES:
        assert_oip_error(client.post(INFER, content=content, headers=headers), status, code)
    body, headers = binary_request([MEDPIX_IMAGE.read_bytes()], [b"a"])
    for length in ("abc", "0", str(len(body) + 1)):
        bad = {**headers, "Inference-Header-Content-Length": length}
        assert_oip_error(client.post(INFER, content=body, headers=bad), 400, "bad_request")
    assert_oip_error(client.post(INFER, content=body + b"!", headers=headers), 400, "bad_request")
    assert_oip_error(client.post(INFER, content=body[:-1], headers=headers), 400, "bad_request")
    body, headers = binary_request([MEDPIX_IMAGE.read_bytes()], [b"\xff\xfe"])
    assert_oip_error(client.post(INFER, content=body, headers=headers), 422, "invalid_utf8")
    # an element length that runs past its tensor
    image_blob = bytes_tensor([MEDPIX_IMAGE.read_bytes()])
    bad_blob = struct.pack("<I", len(image_blob) * 2) + image_blob[4:]
    head = json.dumps(
        {
            "inputs": [
                _tensor("image", parameters={"binary_data_size": len(bad_blob)}),
                _tensor("text", data=["a"]),
            ]
        }
    ).encode()
    framed = {"Inference-Header-Content-Length": str(len(head))}
    assert_oip_error(
        client.post(INFER, content=head + bad_blob, headers=framed), 400, "bad_request"
    )


def test_body_limits_apply(client: TestClient) -> None:
    huge = b"x" * (256 * 1024 + 1)
    response = client.post(INFER, content=huge, headers={"Content-Type": "application/json"})
    assert_oip_error(response, 413, "body_too_large")
    bomb = gzip.compress(b"[" + b" " * (300 * 1024) + b"]")
    response = client.post(INFER, content=bomb, headers={"Content-Encoding": "gzip"})
    assert_oip_error(response, 413, "body_too_large")


def test_api_key_guards_infer_but_not_v2_probes(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], api_key="k3y")
    with started_client(settings) as c:
        assert c.get("/v2/health/ready").status_code == 200
        assert c.get("/v2/health/live").status_code == 200
        assert_oip_error(c.get("/v2/models/medpix"), 401, "unauthorized")
        request = json_request([MEDPIX_IMAGE.read_bytes()], [MEDPIX_TEXT])
        assert_oip_error(c.post(INFER, json=request), 401, "unauthorized")
        ok = c.post(INFER, json=request, headers={"Authorization": "Bearer k3y"})
        assert ok.status_code == 200, ok.text
