"""Several uvicorn workers: metrics aggregate through PROMETHEUS_MULTIPROC_DIR, and more than one
worker without it refuses to start (scrapes would report whichever worker answered)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from app.main import create_app
from app.observability.multiprocess import MetricsConfigError, prepare_dir
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, tiny_settings
from tests.app.observability.scrape import parse, total
from tests.app.servers import running_server

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


def _both_workers_ready(directory: Path) -> Callable[[str], bool]:
    """Both workers wrote their live gauges and the (aggregated) scrape says the model is ready."""

    def ready(base: str) -> bool:
        if len(list(directory.glob("gauge_livemin_*.db"))) != 2:
            return False
        samples = parse(httpx.get(f"{base}/metrics", timeout=5).text)
        return total(samples, "fusionserve_model_ready", model=MODEL) == 1

    return ready


@pytest.mark.slow
def test_two_workers_aggregate_metrics(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "prometheus-multiproc"
    directory.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "FUSIONSERVE_MODELS": MODEL,
        "FUSIONSERVE_PREPROCESS_WORKERS": "1",
    }
    image = MEDPIX_IMAGE.read_bytes()
    with running_server(
        tiny_bundle_dir,
        env=env,
        extra_args=("--workers", "2"),
        ready=_both_workers_ready(directory),
        ready_timeout_s=90,
    ) as (_, base):

        def predict(_: int) -> int:
            files = {"image": ("x.png", image, "image/png")}
            response = httpx.post(
                f"{base}/predict", files=files, data={"text": MEDPIX_TEXT}, timeout=30
            )
            return response.status_code

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
    # The stopped workers' live gauges (in-flight, queue depth, ready) are ghosts now: a new
    # worker's start removes them; counter files stay so totals survive worker restarts.
    assert list(directory.glob("gauge_live*_*.db"))
    prepare_dir(directory)
    assert not list(directory.glob("gauge_live*_*.db"))
    assert sum(_requests_per_worker(directory).values()) == sent
