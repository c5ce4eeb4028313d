"""Prometheus config, Grafana provisioning and the dashboard: valid, wired to each other, and
every panel's PromQL names only metrics a real scrape of the service declares."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.observability.promtool import promtool
from tests.app.observability.scrape import exported_names, scrape

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "fusionserve.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "fusionserve.yml"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE = REPO / "docker-compose.yml"

REQUIRED_PANELS = {  # what operators asked for → a word the panel title must contain
    "latency percentiles per model": "p99",
    "request rate": "request rate",
    "error rate by reason": "error rate by reason",
    "batch size": "batch size",
    "queue depth": "queue depth",
    "class mix": "class mix",
    "low-confidence rate": "low-confidence rate",
    "model faults by kind": "faults by kind",
    "version swaps": "swaps",
    "version serving": "version serving",
}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$model": ".*"}


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p["targets"]]


def _concrete(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names in PromQL (strings, label matchers, grouping and ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', _concrete(expr))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name, rest = match.group(0), text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue  # a function call or an operator keyword
        names.add(name)
    return names


def test_dashboard_is_valid_and_complete() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in _panels())
    missing = [what for what, word in REQUIRED_PANELS.items() if word not in titles]
    assert not missing, f"dashboard lacks panels for: {missing}"
    for panel in _panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "fusionserve-prometheus"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "fusionserve-prometheus"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_every_panel_names_only_exported_metrics(observed: TestClient) -> None:
    exported = exported_names(scrape(observed))
    used: set[str] = set()
    for expr in _exprs():
        names = metric_names(expr)
        assert names, f"no metric in {expr}"
        unknown = names - exported
        assert not unknown, f"{expr} names metrics the service does not export: {unknown}"
        used |= names
    template = json.loads(DASHBOARD.read_text(encoding="utf-8"))["templating"]["list"]
    for variable in template:  # label_values(<selector>, <label>)
        selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
        assert selector is not None, variable["definition"]
        assert metric_names(selector.group(1)) <= exported
    assert len(used) >= 12


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{route=~"/p.*", m="x y"}'
        "[$__rate_interval]))) / on(model) group_left(version) b_total > bool 0"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"fusionserve:panel_{i}", "expr": _concrete(expr)}
                    for i, expr in enumerate(_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_scrapes_the_service() -> None:
    result = promtool("check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "fusionserve")
    assert job["metrics_path"] == "/metrics"
    assert ["fusionserve:8000"] in [c["targets"] for c in job["static_configs"]]


def test_grafana_provisioning_matches_compose_and_dashboard() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    assert [d["uid"] for d in datasources] == ["fusionserve-prometheus"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))["providers"]
    dashboards_path = providers[0]["options"]["path"]
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    grafana_volumes = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{dashboards_path}:ro" in grafana_volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_volumes
    prometheus_volumes = compose["services"]["prometheus"]["volumes"]
    assert any(v.startswith("./deploy/prometheus/prometheus.yml:") for v in prometheus_volumes)
