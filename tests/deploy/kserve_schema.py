"""Strict field check of KServe objects against the kserve SDK's generated models (generated from
KServe's CRD OpenAPI): every key must be a field of its type, recursively, as `kubectl apply
--validate=strict` does on a cluster with the CRDs installed."""

from __future__ import annotations

import re
from typing import Any

import kserve.models
import kubernetes.client.models

LEAVES = {"str", "int", "bool", "float", "object", "datetime", "date", "bytes"}
KINDS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "V1alpha1ServingRuntime",
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): "V1alpha1ClusterServingRuntime",
}


# Types the kserve SDK names but does not ship: the Kubernetes type they stand for.
ALIASES = {"K8sIoApiAppsV1DeploymentStrategy": "V1DeploymentStrategy"}


def _model(name: str) -> Any:
    name = ALIASES.get(name, name)
    for module in (kserve.models, kubernetes.client.models):
        if (cls := getattr(module, name, None)) is not None:
            return cls
    raise LookupError(f"no SDK model named {name}")


def unknown_fields(value: Any, type_name: str, path: str = "") -> list[str]:
    """Paths of keys that are not fields of `type_name` (a model name or an SDK type string)."""
    if type_name in LEAVES or value is None:
        return []
    if match := re.fullmatch(r"[lL]ist\[(.+)\]", type_name):
        assert isinstance(value, list), f"{path}: expected a list"
        return [p for i, v in enumerate(value) for p in unknown_fields(v, match[1], f"{path}[{i}]")]
    if match := re.fullmatch(r"dict\(str, (.+)\)|Dict\[str, (.+)\]", type_name):
        assert isinstance(value, dict), f"{path}: expected a mapping"
        inner = match[1] or match[2]
        return [p for k, v in value.items() for p in unknown_fields(v, inner, f"{path}.{k}")]
    cls = _model(type_name)
    if not getattr(cls, "openapi_types", None):  # e.g. ResourceQuantity, IntOrString
        return []
    assert isinstance(value, dict), f"{path}: expected an object for {type_name}"
    fields = {json_key: cls.openapi_types[attr] for attr, json_key in cls.attribute_map.items()}
    problems = [f"{path}.{key}" for key in value if key not in fields]
    for key, item in value.items():
        if key in fields:
            problems += unknown_fields(item, fields[key], f"{path}.{key}")
    return problems


def check_kserve_object(doc: dict[str, Any]) -> None:
    type_name = KINDS[(doc["apiVersion"], doc["kind"])]
    problems = unknown_fields(doc, type_name, doc["kind"])
    assert not problems, f"fields KServe does not know: {problems}"
