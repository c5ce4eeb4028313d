"""The real bundles under exported/ (when present) load, pass warm-up and serve through HTTP;
the served probabilities for each bundle's own self-test sample match the exporter's."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.contract.manifest import Manifest
from tests.app.helpers import assert_prediction, b64, started_client, tiny_settings

EXPORTED = Path(__file__).resolve().parents[2] / "exported"
BUNDLES = sorted(p.parent.name for p in EXPORTED.glob("*/manifest.json"))


@pytest.mark.skipif(not BUNDLES, reason="no bundles under exported/ yet")
@pytest.mark.parametrize("name", BUNDLES or ["none"])
def test_exported_bundle_serves(name: str) -> None:
    manifest = Manifest.load(EXPORTED / name)
    with started_client(tiny_settings(EXPORTED, models=[name])) as client:
        info = client.get(f"/models/{name}").json()
        assert info["ready"], info["reason"]
        sample = manifest.self_test
        if sample is None:
            pytest.skip(f"{name} has no self-test sample")
        image = (EXPORTED / name / sample.image).read_bytes()
        response = client.post(
            f"/predict?model={name}", json={"image": b64(image), "text": sample.text}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"]["name"] == name and body["model"]["version"] == manifest.version
        assert_prediction(body, tuple(t.name for t in manifest.tasks))  # type: ignore[arg-type]
        for task in manifest.tasks:
            served = body["predictions"][task.name]["probabilities"]
            expected = sample.expected[task.output]
            for label, want in zip(task.labels, expected, strict=True):
                assert abs(served[label] - want) <= max(sample.tolerance, 1e-4)
