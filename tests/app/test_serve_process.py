"""A real `fusionserve serve` (uvicorn) process: ready, answers a real image + caption, stops."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.app.servers import running_server


def _first_dev_sample(medpix_root: Path) -> tuple[Path, str]:
    with (medpix_root / "descriptions_dev.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            caption = (row.get("Description") or {}).get("Caption") or ""
            image = medpix_root / "images" / f"{row['image']}.png"
            if caption and image.is_file():
                return image, caption
    pytest.skip("no MedPix dev sample with a caption")


@pytest.mark.slow
def test_real_server_answers(tiny_bundle_dir: Path, medpix_root: Path) -> None:
    image, caption = _first_dev_sample(medpix_root)
    with running_server(tiny_bundle_dir) as (proc, base):
        files = {"image": (image.name, image.read_bytes(), "image/png")}
        response = httpx.post(f"{base}/predict", files=files, data={"text": caption}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body["predictions"]) == {"modality", "location"}
        for pred in body["predictions"].values():
            assert abs(sum(pred["probabilities"].values()) - 1.0) < 1e-4
        assert body["timing_ms"]["total"] > 0
    # uvicorn re-raises the SIGTERM it handled after a clean shutdown
    assert proc.returncode in (0, -signal.SIGTERM)
