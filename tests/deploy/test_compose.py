"""docker-compose.yml structure: GPU and CPU variants, health, settings, bundles, monitoring."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT

VARIANTS = {"fusionserve-gpu": ("gpu", "gpu"), "fusionserve-cpu": ("cpu", "cpu")}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves the YAML anchors/merge keys the file uses, as compose does.
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_top_level_keys(compose: dict[str, Any]) -> None:
    allowed = {"services", "volumes", "networks", "configs", "secrets", "name"}
    assert {k for k in compose if not k.startswith("x-")} <= allowed
    assert set(compose["volumes"]) == {"prometheus-data", "grafana-data"}


@pytest.mark.parametrize("service", sorted(VARIANTS))
def test_serving_variant(compose: dict[str, Any], service: str) -> None:
    profile, target = VARIANTS[service]
    svc = compose["services"][service]
    assert svc["profiles"] == [profile]
    assert svc["build"] == {"context": ".", "target": target}
    assert svc["image"] == f"fusionserve:{target}"
    assert svc["networks"]["default"]["aliases"] == ["fusionserve"]
    assert "/srv/exported:ro" in svc["volumes"][0]
    env = svc["environment"]
    assert env["FUSIONSERVE_BUNDLE_DIR"] == "/srv/exported"
    assert all(key.startswith("FUSIONSERVE_") for key in env if key != "PROMETHEUS_MULTIPROC_DIR")
    # More than one worker needs the shared metrics directory (the app refuses otherwise).
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    providers = env["FUSIONSERVE_PROVIDERS"].split(",")
    assert providers[-1] == "CPUExecutionProvider"
    assert (providers[0] == "CUDAExecutionProvider") == (target == "gpu")
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and any("/health/live" in part for part in test)
    # The drain must finish before compose sends SIGKILL.
    grace_s = int(svc["stop_grace_period"].rstrip("s"))
    assert grace_s > float(env["FUSIONSERVE_DRAIN_TIMEOUT_S"])
    assert svc["read_only"] is True


def test_gpu_reservation(compose: dict[str, Any]) -> None:
    devices = compose["services"]["fusionserve-gpu"]["deploy"]["resources"]["reservations"][
        "devices"
    ]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "deploy" not in compose["services"]["fusionserve-cpu"]


def test_monitoring_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    monitoring = {name for name, svc in services.items() if "monitoring" in svc.get("profiles", [])}
    assert monitoring == {"prometheus", "grafana"}
    for name in monitoring:
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    host_paths = {m.split(":")[0] for m in mounts if m.startswith("./")}
    assert host_paths == {
        "./deploy/prometheus/prometheus.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    }
    assert services["grafana"]["depends_on"] == ["prometheus"]


def _default(value: str) -> str:
    """The default of a `${VAR:-default}` interpolation, as compose resolves it when unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_students_only_by_default(compose: dict[str, Any]) -> None:
    bundles = REPO_ROOT / "exported"
    for service in VARIANTS:
        env = compose["services"][service]["environment"]
        models = _default(env["FUSIONSERVE_MODELS"]).split(",")
        assert models and all(m.endswith("-student") for m in models), models
        assert all((bundles / m / "manifest.json").is_file() for m in models), models
        assert "${FUSIONSERVE_MODELS:-" in env["FUSIONSERVE_MODELS"], "teachers must be opt-in"


def test_profiles_publish_different_host_ports(compose: dict[str, Any]) -> None:
    assert "ports" not in compose["x-fusionserve"], "a shared port mapping collides"
    published = {}
    for service in VARIANTS:
        (mapping,) = compose["services"][service]["ports"]
        host, container = _default(mapping).rsplit(":", 1)
        assert container == "8000"
        published[service] = host
    assert len(set(published.values())) == len(published), published
    assert published["fusionserve-gpu"] == "8000"
