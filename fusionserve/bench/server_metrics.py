"""Read the served process's own batch-size histogram, so a load level can report the average
batch the batcher formed (items per graph run) — the number that says whether batching happened;
and the batching it resolved (runs at once, items per run): the open-loop floor's server count
and the report's settings line."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

BATCH_SIZE_METRIC = "fusionserve_batch_size"


def batch_totals(base_url: str, model: str, timeout_s: float = 10.0) -> tuple[float, float] | None:
    """(items, graph runs) so far for `model`, from GET /metrics; None when metrics are off."""
    try:
        response = httpx.get(f"{base_url}/metrics", timeout=timeout_s)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    items = runs = 0.0
    for family in text_string_to_metric_families(response.text):
        if family.name != BATCH_SIZE_METRIC:
            continue
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name == f"{BATCH_SIZE_METRIC}_sum":
                items += sample.value
            elif sample.name == f"{BATCH_SIZE_METRIC}_count":
                runs += sample.value
    return items, runs


def mean_batch(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """Items per graph run between two readings; None when either is missing or nothing ran."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def batching(base_url: str, model: str, api_key: str | None = None) -> tuple[int, int | None]:
    """(graph runs `model` may have at once, items per run at most) as the server resolved
    them, from GET /models/{model}. Runs are 1 and the batch None where the server does not
    say (servers from before the setting, the naive baseline, a refused key)."""
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        info = httpx.get(f"{base_url}/models/{model}", headers=headers, timeout=10.0).json()
        said = info.get("batching") or {}
    except (httpx.TransportError, ValueError, AttributeError):
        return 1, None
    runs, size = said.get("concurrent_runs", 1), said.get("max_batch_size")
    runs = runs if isinstance(runs, int) and runs >= 1 else 1
    return runs, size if isinstance(size, int) and size >= 1 else None
