"""POST /predict through the ASGI app: both content types, model/role choice, the error matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    WOUND_IMAGE,
    WOUND_TEXT,
    animated_gif,
    assert_error,
    assert_prediction,
    b64,
    encode,
    png_header_only,
)

MEDPIX_TASKS = ("modality", "location")
WOUND_TASKS = ("type", "severity")


def _multipart(image: bytes, text: str | bytes, **fields: str) -> dict[str, Any]:
    return {
        "files": {"image": ("upload.png", image, "image/png"), "text": (None, text)},
        "data": fields,
    }


def test_multipart_real_image(client: TestClient) -> None:
    response = client.post("/predict", **_multipart(MEDPIX_IMAGE.read_bytes(), MEDPIX_TEXT))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "medpix-student"
    assert body["model"]["role"] == "student" and body["model"]["task_set"] == "medpix"
    assert len(body["model"]["version"]) == 12
    assert_prediction(body, MEDPIX_TASKS)
    weights = body["modality_weights"]
    assert abs(weights["image"] + weights["text"] - 1.0) < 1e-5


def test_json_base64_with_task_set_in_query(client: TestClient) -> None:
    payload = {"image": b64(WOUND_IMAGE.read_bytes()), "text": WOUND_TEXT}
    response = client.post("/predict?model=wound", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["model"]["name"] == "wound-student"
    assert_prediction(response.json(), WOUND_TASKS)


def test_json_and_multipart_agree(client: TestClient) -> None:
    image = MEDPIX_IMAGE.read_bytes()
    as_json = client.post("/predict", json={"image": b64(image), "text": MEDPIX_TEXT}).json()
    as_form = client.post("/predict", **_multipart(image, MEDPIX_TEXT)).json()
    assert as_json["predictions"] == as_form["predictions"]


def test_data_url_and_unpadded_base64_accepted(client: TestClient) -> None:
    encoded = b64(MEDPIX_IMAGE.read_bytes())
    for image in (f"data:image/png;base64,{encoded}", encoded.rstrip("=")):
        response = client.post("/predict", json={"image": image, "text": "x"})
        assert response.status_code == 200, response.text


def test_text_changes_the_prediction(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    a = client.post("/predict", json={"image": image, "text": MEDPIX_TEXT}).json()
    b = client.post("/predict", json={"image": image, "text": "skull fracture brain MR"}).json()
    assert a["predictions"] != b["predictions"]


@pytest.mark.parametrize(
    "query,body_extra,expected",
    [
        ("?model=medpix&role=teacher", {}, "medpix-teacher"),
        ("", {"model": "medpix-teacher"}, "medpix-teacher"),
        ("?model=wound", {"model": "medpix"}, "medpix-student"),  # body field wins
        ("?role=student", {}, "medpix-student"),  # DEFAULT_TASK_SET
    ],
)
def test_model_and_role_selection(
    client: TestClient, query: str, body_extra: dict[str, str], expected: str
) -> None:
    payload = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT, **body_extra}
    response = client.post(f"/predict{query}", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == expected
    if expected == "medpix-teacher":  # its fusion exposes no modality weights
        assert "modality_weights" not in body


def test_empty_text_uses_fallback(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    empty = client.post("/predict", json={"image": image, "text": "   "})
    fallback = client.post("/predict", json={"image": image, "text": "No description available"})
    assert empty.status_code == 200
    assert empty.json()["predictions"] == fallback.json()["predictions"]


def test_low_confidence_flag_follows_threshold(client: TestClient) -> None:
    body = client.post(
        "/predict", json={"image": b64(WOUND_IMAGE.read_bytes()), "text": "x", "model": "wound"}
    ).json()
    for pred in body["predictions"].values():
        assert pred["low_confidence"] == (pred["probability"] < 0.5)


def _rgb(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, (120, 30, 200))


def _truncated_png() -> bytes:
    return MEDPIX_IMAGE.read_bytes()[:2000]


def _truncated_jpeg() -> bytes:
    return WOUND_IMAGE.read_bytes()[:3000]


JSON_CASES: list[tuple[str, Callable[[], dict[str, Any]], int, str]] = [
    ("missing text", lambda: {"image": b64(MEDPIX_IMAGE.read_bytes())}, 422, "missing_field"),
    ("missing image", lambda: {"text": "x"}, 422, "missing_field"),
    (
        "wrong type",
        lambda: {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": 5},
        422,
        "invalid_request",
    ),
    ("extra field", lambda: {"image": "", "text": "x", "colour": 1}, 422, "invalid_request"),
    ("not base64", lambda: {"image": "this is *not* base64!", "text": "x"}, 422, "invalid_base64"),
    (
        "text too long",
        lambda: {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "a" * 201},
        422,
        "text_too_long",
    ),
    (
        "unknown model",
        lambda: {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x", "model": "nope"},
        404,
        "unknown_model",
    ),
    (
        "unknown role",
        lambda: {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x", "role": "intern"},
        422,
        "unknown_role",
    ),
    (
        "role conflicts with bundle",
        lambda: {
            "image": b64(MEDPIX_IMAGE.read_bytes()),
            "text": "x",
            "model": "medpix-student",
            "role": "teacher",
        },
        422,
        "invalid_request",
    ),
    (
        "no teacher for wound",
        lambda: {
            "image": b64(WOUND_IMAGE.read_bytes()),
            "text": "x",
            "model": "wound",
            "role": "teacher",
        },
        404,
        "unknown_model",
    ),
    ("zero-byte image", lambda: {"image": "", "text": "x"}, 422, "empty_image"),
    (
        "random bytes",
        lambda: {"image": b64(bytes(range(256)) * 4), "text": "x"},
        415,
        "unsupported_image",
    ),
    (
        "pdf",
        lambda: {"image": b64(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"), "text": "x"},
        415,
        "unsupported_image",
    ),
    (
        "svg",
        lambda: {
            "image": b64(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'),
            "text": "x",
        },
        415,
        "unsupported_image",
    ),
    ("animated gif", lambda: {"image": b64(animated_gif()), "text": "x"}, 415, "unsupported_image"),
    ("truncated png", lambda: {"image": b64(_truncated_png()), "text": "x"}, 422, "invalid_image"),
    (
        "1x1 image",
        lambda: {"image": b64(encode(_rgb((1, 1)))), "text": "x"},
        422,
        "image_too_small",
    ),
    (
        "over MAX_IMAGE_PIXELS",
        lambda: {"image": b64(encode(_rgb((500, 500)))), "text": "x"},
        413,
        "image_too_large",
    ),
]


@pytest.mark.parametrize("name,payload,status,code", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_error_matrix(
    client: TestClient, name: str, payload: Callable[[], dict[str, Any]], status: int, code: str
) -> None:
    assert_error(client.post("/predict", json=payload()), status, code)


def test_decompression_bomb_rejected_from_header(client: TestClient) -> None:
    # 20000×20000 claimed by the header, ~100 bytes of data: refused before any pixel decode.
    # Pillow's own bomb guard fires inside Image.open and the contract reports it as
    # image_too_large; a header just over MAX_IMAGE_PIXELS gets the same answer.
    assert_error(
        client.post("/predict", json={"image": b64(png_header_only(20000, 20000)), "text": "x"}),
        413,
        "image_too_large",
    )
    assert_error(
        client.post("/predict", json={"image": b64(png_header_only(600, 600)), "text": "x"}),
        413,
        "image_too_large",
    )


def test_gif_is_not_an_accepted_format(client: TestClient) -> None:
    # GIF is outside the accepted formats, so even a still GIF is refused as unsupported.
    still = encode(Image.new("P", (16, 16), 3), "GIF")
    assert_error(
        client.post("/predict", json={"image": b64(still), "text": "x"}), 415, "unsupported_image"
    )


def test_invalid_json(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"image": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")


def test_deeply_nested_json(client: TestClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_json")


def test_invalid_utf8_json(client: TestClient) -> None:
    body = b'{"image": "", "text": "\xff\xfe caf\xe9"}'
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_utf8")


def test_lone_surrogate_in_json_text(client: TestClient) -> None:
    image = b64(MEDPIX_IMAGE.read_bytes())
    body = '{"image": "' + image + '", "text": "a \\ud800 b"}'  # JSON escape of a lone surrogate
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_utf8")


def test_invalid_utf8_multipart_text(client: TestClient) -> None:
    response = client.post("/predict", **_multipart(MEDPIX_IMAGE.read_bytes(), b"caf\xe9 \xff"))
    assert_error(response, 422, "invalid_utf8")


def test_utf8_multipart_text_accepted(client: TestClient) -> None:
    response = client.post("/predict", **_multipart(MEDPIX_IMAGE.read_bytes(), "café – ∅ 5 mm"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("missing", ["image", "text"])
def test_multipart_missing_field(client: TestClient, missing: str) -> None:
    parts = _multipart(MEDPIX_IMAGE.read_bytes(), "x")
    del parts["files"][missing]
    if not parts["files"]:
        parts = {"data": {"text": "x"}, "files": {"other": ("a.txt", b"a", "text/plain")}}
    assert_error(client.post("/predict", **parts), 422, "missing_field")


def test_multipart_image_must_be_a_file(client: TestClient) -> None:
    response = client.post("/predict", files={"image": (None, "abc"), "text": (None, "x")})
    assert_error(response, 422, "invalid_request")


def test_unsupported_content_type(client: TestClient) -> None:
    response = client.post("/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


def test_body_over_limit_by_content_length(client: TestClient) -> None:
    big = b"\x00" * (300 * 1024)
    response = client.post("/predict", **_multipart(big, "x"))
    assert_error(response, 413, "body_too_large")


def test_chunked_body_over_limit_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: 4 MiB offered, limit 256 KiB
        for _ in range(64):
            yield b"a" * 65536

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "body_too_large")


def test_wrong_method_and_route(client: TestClient) -> None:
    assert_error(client.get("/predict"), 405, "method_not_allowed")
    assert_error(client.get("/no/such/route"), 404, "not_found")


def test_server_healthy_after_bad_inputs(client: TestClient) -> None:
    for _name, payload, _status, _code in JSON_CASES:
        client.post("/predict", json=payload())
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    ok = client.post("/predict", json={"image": b64(MEDPIX_IMAGE.read_bytes()), "text": "x"})
    assert ok.status_code == 200


def test_the_answer_is_its_documented_model_exactly(client: TestClient) -> None:
    """/predict writes its JSON without the response model (app.answer): the body must still
    be what validating it into PredictResponse and dumping without Nones gives, in order."""
    from app.schemas import PredictResponse

    response = client.post("/predict", **_multipart(MEDPIX_IMAGE.read_bytes(), MEDPIX_TEXT))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    dumped = PredictResponse.model_validate(body).model_dump(mode="json", exclude_none=True)
    assert dumped == body and list(dumped) == list(body)
