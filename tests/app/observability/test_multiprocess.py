"""Several uvicorn workers: metrics aggregate through PROMETHEUS_MULTIPROC_DIR, and more than one
worker without it refuses to start (scrapes would report whichever worker answered)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from app.main import create_app
from app.observability.multiprocess import MetricsConfigError, prepare_dir
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, tiny_settings
from tests.app.observability.scrape import parse, total

REPO = Path(__file__).resolve().parents[3]
MODEL = "medpix-student"


def test_several_workers_need_the_multiprocess_dir(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    with pytest.raises(MetricsConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        create_app(tiny_settings(tiny_bundle_dir, workers=2))
    create_app(tiny_settings(tiny_bundle_dir, workers=2, metrics_enabled=False))
    create_app(tiny_settings(tiny_bundle_dir, workers=1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests_per_worker(directory: Path) -> dict[str, float]:
    """fusionserve_http_requests_total as each worker process wrote it (one file per pid)."""
    out = {}
    for file in sorted(directory.glob("counter_*.db")):
        metrics = MultiProcessCollector.merge([str(file)], accumulate=False)
        out[file.stem] = sum(
            s.value
            for m in metrics
            for s in m.samples
            if s.name == "fusionserve_http_requests_total"
        )
    return out


def _wait_until_both_ready(proc: subprocess.Popen[bytes], base: str, directory: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
        assert time.monotonic() < deadline, "workers never became ready"
        workers = len(list(directory.glob("gauge_livemin_*.db")))
        try:
            samples = parse(httpx.get(f"{base}/metrics", timeout=5).text)
        except httpx.TransportError:
            samples = {}
        if workers == 2 and total(samples, "fusionserve_model_ready", model=MODEL) == 1:
            return
        time.sleep(0.1)


@pytest.mark.slow
def test_two_workers_aggregate_metrics(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "prometheus-multiproc"
    port = _free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "FUSIONSERVE_MODELS": MODEL,
        "FUSIONSERVE_INTRA_OP_THREADS": "1",
        "FUSIONSERVE_PREPROCESS_WORKERS": "1",
    }
    cmd = [
        sys.executable, "-m", "fusionserve.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--bundle-dir", str(tiny_bundle_dir), "--workers", "2",
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    image = MEDPIX_IMAGE.read_bytes()

    def predict(_: int) -> int:
        files = {"image": ("x.png", image, "image/png")}
        response = httpx.post(
            f"{base}/predict", files=files, data={"text": MEDPIX_TEXT}, timeout=30
        )
        return response.status_code

    try:
        directory.mkdir()
        _wait_until_both_ready(proc, base, directory)
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(6):  # until both workers answered some (fresh connection each)
                assert list(pool.map(predict, range(8))) == [200] * 8
                sent += 8
                if sum(v > 0 for v in _requests_per_worker(directory).values()) >= 2:
                    break
        per_worker = _requests_per_worker(directory)
        assert sum(per_worker.values()) == sent
        assert sum(v > 0 for v in per_worker.values()) == 2, per_worker
        for _ in range(6):  # whichever worker answers the scrape reports both workers' sum
            samples = parse(httpx.get(f"{base}/metrics", timeout=5).text)
            assert total(samples, "fusionserve_http_requests_total", route="/predict") == sent
            for task in ("modality", "location"):
                assert total(samples, "fusionserve_predictions_total", task=task) == sent
            assert total(samples, "fusionserve_item_phase_seconds_count", phase="queue") == sent
            assert total(samples, "fusionserve_http_requests_in_flight") == 0
            assert total(samples, "fusionserve_model_ready", model=MODEL) == 1
            info = [k for k in samples if k[0] == "fusionserve_model_info"]
            assert len(info) == 1  # one series per model, not one per worker
            assert not any(k[0].startswith("process_") for k in samples)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # The stopped workers' live gauges (in-flight, queue depth, ready) are ghosts now: a new
    # worker's start removes them; counter files stay so totals survive worker restarts.
    assert list(directory.glob("gauge_live*_*.db"))
    prepare_dir(directory)
    assert not list(directory.glob("gauge_live*_*.db"))
    assert sum(_requests_per_worker(directory).values()) == sent
