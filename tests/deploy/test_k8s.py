"""Kubernetes and KServe manifests: schema-valid (offline, strict) and wired correctly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, load_yaml_documents

K8S = REPO_ROOT / "deploy" / "k8s"
KSERVE = REPO_ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
K8S_VERSION = "1.30.0"  # oldest supported version we target; the schemas ship in the package
PRESTOP_SLEEP_S = 5
# KServe's ComponentExtensionSpec fields; the rest of a predictor is a core PodSpec.
KSERVE_EXTENSION_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
    "autoScaling",
}


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def objects(variant: str) -> dict[str, dict[str, Any]]:
    """kind -> object for what `kubectl apply -k deploy/k8s/<variant>` creates."""
    found: dict[str, dict[str, Any]] = {}
    for directory in (K8S / "common", K8S / variant):
        for name in yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]:
            if (directory / name).is_file():
                for doc in load_yaml_documents(directory / name):
                    found[doc["kind"]] = doc
    return found


def drain_timeout_s(variant: str, container: dict[str, Any]) -> float:
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    config = objects(variant)["ConfigMap"]["data"]
    return float(env.get("FUSIONSERVE_DRAIN_TIMEOUT_S") or config["FUSIONSERVE_DRAIN_TIMEOUT_S"])


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_is_schema_valid(path: Path) -> None:
    for doc in load_yaml_documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_invalid_manifest_is_rejected() -> None:
    doc = load_yaml_documents(K8S / "common" / "service.yaml")[0]
    doc["spec"]["portz"] = doc["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomizations_list_existing_resources() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            assert (kustomization.parent / resource).exists(), (kustomization, resource)
    listed = {
        (k.parent / r).resolve()
        for k in K8S.rglob("kustomization.yaml")
        for r in yaml.safe_load(k.read_text())["resources"]
    }
    assert set(p.resolve() for p in manifest_files()) <= listed, "a manifest no overlay applies"


def check_probes(container: dict[str, Any], port: str | int) -> None:
    for probe, path in (
        ("startupProbe", "/health/ready"),
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": port}, probe
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SLEEP_S)]


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_deployment_wiring(variant: str) -> None:
    found = objects(variant)
    deployment = found["Deployment"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        spec = found[kind]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= labels.items(), kind
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"fusionserve:{variant}"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    assert found["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    check_probes(container, "http")
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > PRESTOP_SLEEP_S + drain_timeout_s(variant, container)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [
        {"configMapRef": {"name": found["ConfigMap"]["metadata"]["name"]}}
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    providers = env["FUSIONSERVE_PROVIDERS"].split(",")
    assert providers[-1] == "CPUExecutionProvider"
    resources = container["resources"]
    if variant == "gpu":
        assert providers[0] == "CUDAExecutionProvider"
        assert resources["limits"]["nvidia.com/gpu"] == 1
        assert resources["requests"]["nvidia.com/gpu"] == 1
    else:
        assert "nvidia.com/gpu" not in resources["limits"]
    hpa = found["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert "cpu" in resources["requests"], "HPA utilization needs a CPU request"


def test_kserve_inferenceservice() -> None:
    (isvc,) = load_yaml_documents(KSERVE)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"]
    predictor = dict(isvc["spec"]["predictor"])
    assert set(isvc["spec"]) == {"predictor"}
    extension = {k: predictor.pop(k) for k in list(predictor) if k in KSERVE_EXTENSION_FIELDS}
    assert 1 <= extension["minReplicas"] <= extension["maxReplicas"]
    # The rest of the predictor is a PodSpec: validate it with the core schema.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    gpu_container = objects("gpu")["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == gpu_container["image"], "KServe must use the same image"
    assert container["ports"][0]["containerPort"] == 8000
    check_probes(container, 8000)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert predictor["terminationGracePeriodSeconds"] > PRESTOP_SLEEP_S + drain_timeout_s(
        "gpu", container
    )


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_hpa_owns_the_replica_count(variant: str) -> None:
    found = objects(variant)
    target = found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
    assert found["Deployment"]["metadata"]["name"] == target
    assert "replicas" not in found["Deployment"]["spec"], "each apply would reset the HPA's count"


def test_gpu_rollout_needs_no_spare_gpu() -> None:
    strategy = objects("gpu")["Deployment"]["spec"]["strategy"]
    assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] == 0


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_disruption_budget_per_fleet(variant: str) -> None:
    found = objects(variant)
    other = "gpu" if variant == "cpu" else "cpu"
    pdb = found["PodDisruptionBudget"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    other_pod = objects(other)["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= other_pod.items(), "one budget must not span both fleets"
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    min_replicas = found["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
    if variant == "gpu":  # at the HPA's minimum a drain must not take the last GPU pod
        assert pdb["spec"]["minAvailable"] >= 1 and min_replicas >= 1
    else:
        assert min_replicas - pdb["spec"]["maxUnavailable"] >= 1


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_threads_follow_the_cpu_request(variant: str) -> None:
    (container,) = objects(variant)["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    source = env["FUSIONSERVE_INTRA_OP_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert source == {"resource": "requests.cpu"}  # divisor 1: whole cores, rounded up
    assert "cpu" in container["resources"]["requests"]


def test_kustomizations_use_resources_only() -> None:
    """objects() expands kustomizations by `resources` alone, as kustomize would only then."""
    for kustomization in K8S.rglob("kustomization.yaml"):
        keys = set(yaml.safe_load(kustomization.read_text()))
        assert keys <= {"apiVersion", "kind", "resources"}, kustomization
