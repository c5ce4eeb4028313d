"""KServe manifests as KServe's controller reads them: strict CRD fields (the SDK's models),
the PodSpec parts against the core schema, and the controller behaviours that bit us —
autoscaling fields, label propagation onto predictor pods, GPU rollouts, threads, storageUri."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.conftest import REPO_ROOT, load_yaml_documents
from tests.deploy.test_k8s import K8S_VERSION, KSERVE_EXTENSION_FIELDS, objects

pytest.importorskip("kserve")
from tests.deploy.kserve_schema import check_kserve_object, unknown_fields

KSERVE_DIR = REPO_ROOT / "deploy" / "kserve"
ISVCS = sorted(KSERVE_DIR.glob("inferenceservice*.yaml"))
RUNTIME = KSERVE_DIR / "servingruntime.yaml"
# Ignored since KServe 0.15 (the HPA then silently targets 80 % CPU): spec fields instead.
IGNORED_ANNOTATIONS = {
    "serving.kserve.io/metric",
    "serving.kserve.io/targetUtilizationPercentage",
    "autoscaling.knative.dev/target",
}
MODEL_ONLY_FIELDS = {"modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri",
                     "storage"}  # fmt: skip


def _doc(path: Path) -> dict[str, Any]:
    (doc,) = load_yaml_documents(path)
    return doc


def _containers(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """What runs in the predictor pod: a custom container, or the runtime's merged with `model`."""
    predictor = isvc["spec"]["predictor"]
    if "model" not in predictor:
        return list(predictor["containers"])
    runtime = _doc(RUNTIME)
    (container,) = runtime["spec"]["containers"]
    model = {k: v for k, v in predictor["model"].items() if k not in MODEL_ONLY_FIELDS}
    resources = {
        kind: {**container["resources"].get(kind, {}), **model.get("resources", {}).get(kind, {})}
        for kind in ("requests", "limits")
    }
    return [{**container, **model, "resources": resources}]


@pytest.mark.parametrize("path", [*ISVCS, RUNTIME], ids=lambda p: p.name)
def test_kserve_fields_are_known_to_kserve(path: Path) -> None:
    check_kserve_object(_doc(path))


def test_strict_check_catches_a_typo() -> None:
    isvc = _doc(ISVCS[0])
    isvc["spec"]["predictor"]["scaleMetrc"] = "cpu"
    assert unknown_fields(isvc, "V1beta1InferenceService") == [".spec.predictor.scaleMetrc"]


@pytest.mark.parametrize("path", ISVCS, ids=lambda p: p.name)
def test_predictor_pod_is_schema_valid(path: Path) -> None:
    predictor = dict(_doc(path)["spec"]["predictor"])
    for key in [*KSERVE_EXTENSION_FIELDS, "model"]:
        predictor.pop(key, None)
    predictor["containers"] = _containers(_doc(path))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", ISVCS, ids=lambda p: p.name)
def test_autoscaling_uses_spec_fields(path: Path) -> None:
    isvc = _doc(path)
    annotations = isvc["metadata"].get("annotations", {})
    assert not IGNORED_ANNOTATIONS & set(annotations), "KServe ignores these; use scaleMetric"
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
    predictor = isvc["spec"]["predictor"]
    assert predictor["scaleMetric"] == "cpu"
    assert 1 <= predictor["scaleTarget"] <= 100
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    requests = _containers(isvc)[0]["resources"]["requests"]
    assert "cpu" in requests, "a CPU utilization target needs a CPU request"


@pytest.mark.parametrize("path", ISVCS, ids=lambda p: p.name)
def test_plain_service_and_budgets_never_select_kserve_pods(path: Path) -> None:
    isvc = _doc(path)
    # KServe's controller puts the InferenceService's and the predictor's labels on the pods,
    # plus its own.
    pod_labels = {
        **isvc["metadata"].get("labels", {}),
        **isvc["spec"]["predictor"].get("labels", {}),
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"],
        "component": "predictor",
        "app": f"isvc.{isvc['metadata']['name']}-predictor",
    }
    for variant in ("cpu", "gpu"):
        for kind in ("Service", "PodDisruptionBudget"):
            spec = objects(variant)[kind]["spec"]
            selector = spec["selector"].get("matchLabels", spec["selector"])
            assert not selector.items() <= pod_labels.items(), (variant, kind, path.name)


@pytest.mark.parametrize("path", ISVCS, ids=lambda p: p.name)
def test_gpu_rollout_needs_no_spare_gpu(path: Path) -> None:
    isvc = _doc(path)
    assert _containers(isvc)[0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    strategy = isvc["spec"]["predictor"]["deploymentStrategy"]
    assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] == 0


@pytest.mark.parametrize("path", ISVCS, ids=lambda p: p.name)
def test_threads_follow_the_cpu_request(path: Path) -> None:
    (container,) = _containers(_doc(path))
    env = {e["name"]: e for e in container["env"]}
    source = env["FUSIONSERVE_INTRA_OP_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert source == {"resource": "requests.cpu"}  # divisor 1: whole cores, rounded up
    assert "cpu" in container["resources"]["requests"]


def test_v2_variant_loads_bundles_from_storage_uri() -> None:
    isvc = _doc(KSERVE_DIR / "inferenceservice-v2.yaml")
    runtime = _doc(RUNTIME)
    model = isvc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = [(f["name"], f["version"]) for f in runtime["spec"]["supportedModelFormats"]]
    assert (model["modelFormat"]["name"], model["modelFormat"]["version"]) in formats
    assert model["storageUri"].split("://")[0] in {"s3", "gs", "pvc", "https", "hf", "oci"}
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FUSIONSERVE_BUNDLE_DIR"] == "/mnt/models"  # where the storage initializer puts it
    baked = _doc(KSERVE_DIR / "inferenceservice.yaml")
    (custom,) = baked["spec"]["predictor"]["containers"]
    assert "FUSIONSERVE_BUNDLE_DIR" not in {e["name"] for e in custom["env"]}  # the image's own
    gpu = objects("gpu")["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == custom["image"] == gpu["image"]
