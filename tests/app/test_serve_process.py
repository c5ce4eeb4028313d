"""A real `fusionserve serve` (uvicorn) process: ready, answers a real image + caption, stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port = _free_port()
    env = {**os.environ, "FUSIONSERVE_INTRA_OP_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "fusionserve.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--bundle-dir", str(tiny_bundle_dir),
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        files = {"image": (image.name, image.read_bytes(), "image/png")}
        response = httpx.post(f"{base}/predict", files=files, data={"text": caption}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body["predictions"]) == {"modality", "location"}
        for pred in body["predictions"].values():
            assert abs(sum(pred["probabilities"].values()) - 1.0) < 1e-4
        assert body["timing_ms"]["total"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the SIGTERM it handled after a clean shutdown
    assert proc.returncode in (0, -signal.SIGTERM)
