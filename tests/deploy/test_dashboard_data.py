"""A real Prometheus scraping a real `fusionserve serve` that has seen no traffic: every dashboard
query over counters must already return data (0, not Grafana's "No data"), so a panel such as
batch failures reads 0 from the start instead of appearing only after the first failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.app.observability.test_dashboards import DASHBOARD, metric_names
from tests.app.servers import free_port, running_server
from tests.fixtures.tiny_bundle import build_tiny_bundle_dir

pytestmark = pytest.mark.slow
RATE_WINDOW = "30s"


def _counter_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            if all(name.endswith("_total") for name in metric_names(expr)):
                concrete = expr.replace("$__rate_interval", RATE_WINDOW).replace("$model", ".*")
                queries.append((panel["title"], concrete))
    return queries


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus not installed (apt-get install -y prometheus)")
    tiny_bundle_dir = build_tiny_bundle_dir(tmp_path_factory.mktemp("bundles"))
    env = {"FUSIONSERVE_MODELS": "medpix-student,wound-student"}
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        work = tmp_path_factory.mktemp("prometheus")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "fusionserve", "static_configs": [
                    {"targets": [base.removeprefix("http://")]}]},
            ],
        }  # fmt: skip
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        proc = subprocess.Popen(
            [exe, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _query(prometheus: str, expr: str) -> list[dict[str, object]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


def test_counter_panels_have_data_before_any_traffic(prometheus: str) -> None:
    queries = _counter_queries()
    assert len(queries) >= 6
    deadline = time.monotonic() + 60
    while True:  # rate() needs two scrapes
        try:
            empty = [(title, expr) for title, expr in queries if not _query(prometheus, expr)]
        except (httpx.TransportError, httpx.HTTPStatusError):  # Prometheus still starting
            empty = queries
        if not empty:
            break
        assert time.monotonic() < deadline, f"panels without data: {empty}"
        time.sleep(1)
    batch_failures = _query(prometheus, "fusionserve_batch_failures_total")
    assert {r["metric"]["model"] for r in batch_failures} == {"medpix-student", "wound-student"}
