"""The domain check served: the committed MedPix student (its fitted `domain.npz`) answers its own
example in domain and a wound photo out of domain on the image side, on /predict, /predict/batch
and OIP v2 (tensors listed in the metadata), sets low_confidence, counts the flag in /metrics,
and refuses it with 422 out_of_domain when FUSIONSERVE_REFUSE_OUT_OF_DOMAIN is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.contract.manifest import Manifest
from tests.app.helpers import (
    MEDPIX_IMAGE,
    MEDPIX_TEXT,
    WOUND_IMAGE,
    WOUND_TEXT,
    assert_error,
    b64,
    started_client,
    tiny_settings,
)

EXPORTED = Path(__file__).resolve().parents[2] / "exported"
MODEL = "medpix-student"
pytestmark = pytest.mark.skipif(
    Manifest.load(EXPORTED / MODEL).domain is None, reason="bundle exported without a check"
)


def _item(image: Path, text: str) -> dict[str, str]:
    return {"image": b64(image.read_bytes()), "text": text, "model": MODEL}


def test_predict_flags_a_wound_photo_and_not_a_ct_slice() -> None:
    with started_client(tiny_settings(EXPORTED, models=[MODEL])) as client:
        own = client.post("/predict", json=_item(MEDPIX_IMAGE, MEDPIX_TEXT)).json()
        wound = client.post("/predict", json=_item(WOUND_IMAGE, MEDPIX_TEXT)).json()
        blank_text = client.post("/predict", json=_item(MEDPIX_IMAGE, "")).json()
        metrics = client.get("/metrics").text
        info = client.get(f"/models/{MODEL}").json()
    assert info["domain"]["method"] == "mahalanobis-ledoit-wolf"
    assert info["domain"]["metrics"]["own_dev"]["either"] <= info["domain"]["false_flag_rate"]
    assert own["domain"]["image"]["in_domain"] and own["domain"]["text"]["in_domain"]
    assert 0 < own["domain"]["image"]["score"] <= 1
    assert not wound["domain"]["image"]["in_domain"] and wound["domain"]["image"]["score"] > 1
    assert wound["domain"]["text"]["in_domain"]  # the caption is a MedPix caption
    assert all(p["low_confidence"] for p in wound["predictions"].values())
    # an image sent alone: the service's own fallback text is never flagged
    assert blank_text["domain"]["text"]["in_domain"]
    line = f'fusionserve_out_of_domain_total{{model="{MODEL}",side="image"}} 1.0'
    assert line in metrics
    assert f'fusionserve_out_of_domain_total{{model="{MODEL}",side="text"}} 0.0' in metrics


def test_batch_items_and_oip_outputs_carry_the_check() -> None:
    with started_client(tiny_settings(EXPORTED, models=[MODEL])) as client:
        items = [_item(MEDPIX_IMAGE, MEDPIX_TEXT), _item(WOUND_IMAGE, WOUND_TEXT)]
        batch = client.post("/predict/batch", json={"items": items}).json()["results"]
        metadata = client.get(f"/v2/models/{MODEL}").json()
        inputs = [
            {"name": name, "shape": [2], "datatype": "BYTES", "data": [i[name] for i in items]}
            for name in ("image", "text")
        ]
        infer = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs}).json()
    flags = [r["result"]["domain"] for r in batch]
    assert flags[0]["image"]["in_domain"] and not flags[1]["image"]["in_domain"]
    declared = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert declared["domain_score_image"] == "FP32" and declared["in_domain_text"] == "BOOL"
    outputs = {o["name"]: o["data"] for o in infer["outputs"]}
    assert outputs["in_domain_image"] == [True, False]
    assert outputs["in_domain_text"] == [f["text"]["in_domain"] for f in flags]
    scores = [flags[i]["image"]["score"] for i in range(2)]
    assert outputs["domain_score_image"] == pytest.approx(scores, abs=1e-3)


def test_refusal_answers_422_out_of_domain() -> None:
    settings = tiny_settings(EXPORTED, models=[MODEL], refuse_out_of_domain=True)
    with started_client(settings) as client:
        refused = client.post("/predict", json=_item(WOUND_IMAGE, MEDPIX_TEXT))
        answered = client.post("/predict", json=_item(MEDPIX_IMAGE, MEDPIX_TEXT))
        metrics = client.get("/metrics").text
    assert_error(refused, 422, "out_of_domain")
    assert "image score" in refused.json()["error"]["message"]
    assert answered.status_code == 200
    assert f'fusionserve_out_of_domain_total{{model="{MODEL}",side="image"}} 1.0' in metrics
