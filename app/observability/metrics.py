"""Every Prometheus metric the service exports, in one place: names, types, labels, buckets.

Built once per app on its own CollectorRegistry, so apps built side by side (tests) never mix
their samples. With PROMETHEUS_MULTIPROC_DIR set, prometheus-client writes values to per-process
files instead and /metrics aggregates every worker (app.observability.multiprocess); each gauge
says how its per-worker values combine. Label values are bounded: model names come from the
registry's configured bundles, never from what a client typed.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

# Seconds. Resolves 1 ms (a tiny graph on CPU) to 10 s (a deadline on a loaded GPU).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# width × height as received: 64², 128², 256², 512², 1024², 2048², 4096², 40 MP (the default cap).
IMAGE_PIXEL_BUCKETS = (4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 40000000)
TEXT_TOKEN_BUCKETS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
PHASES = ("queue", "preprocess", "inference")
FAULT_KINDS = ("exception", "non_finite", "stall", "slow", "reload")
SWAP_OUTCOMES = ("swapped", "refused")


class ServiceMetrics:
    """The metric objects; `app.observability.recorder` is the only writer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        # -- HTTP traffic (probes and /metrics are not traffic) --------------------------------
        self.requests = Counter(
            "fusionserve_http_requests",
            "HTTP requests answered, by route template, method, status and model "
            "(model is '' when no model answered).",
            ["route", "method", "status", "model"],
            registry=r,
        )
        self.request_duration = Histogram(
            "fusionserve_http_request_duration_seconds",
            "End-to-end latency: first byte in to last byte out, by route and model.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "fusionserve_http_requests_in_flight",
            "HTTP requests being answered now (all workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejections = Counter(
            "fusionserve_rejections",
            "Requests or items refused before a prediction, by reason: queue_full, timeout, "
            "too_large, invalid_input, not_ready, unauthorized.",
            ["model", "reason"],
            registry=r,
        )
        # -- Items through the serving path ----------------------------------------------------
        self.phase_duration = Histogram(
            "fusionserve_item_phase_seconds",
            "Per item: queue (waiting in the batcher), preprocess (decode + tokenize, including "
            "the wait for a worker) and inference (its batch's graph run).",
            ["model", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fusionserve_batch_size",
            "Items per successful graph run.",
            ["model"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "fusionserve_batch_inference_seconds",
            "Duration of each graph run (successful or not).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_failures = Counter(
            "fusionserve_batch_failures",
            "Graph runs that raised (a failed batch is retried item by item).",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "fusionserve_queue_depth",
            "Items waiting in the model's batch queue (sum over workers).",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.image_pixels = Histogram(
            "fusionserve_input_image_pixels",
            "Accepted images' width × height as received.",
            ["model"],
            buckets=IMAGE_PIXEL_BUCKETS,
            registry=r,
        )
        self.text_tokens = Histogram(
            "fusionserve_input_text_tokens",
            "Accepted texts' token count before truncation.",
            ["model"],
            buckets=TEXT_TOKEN_BUCKETS,
            registry=r,
        )
        # -- Models ------------------------------------------------------------------------------
        self.model_ready = Gauge(
            "fusionserve_model_ready",
            "1 when the model passed its warm-up and its batcher runs (min over workers).",
            ["model"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.model_load = Gauge(
            "fusionserve_model_load_seconds",
            "Time to verify and load the bundle (max over workers).",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_warmup = Gauge(
            "fusionserve_model_warmup_seconds",
            "Time of the warm-up inferences (max over workers).",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_info = Gauge(
            "fusionserve_model_info",
            "Always 1; the labels say what is served: bundle version (sha256 prefix), the "
            "execution provider in use and the graph precision.",
            ["model", "version", "provider", "precision"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_faults = Counter(
            "fusionserve_model_faults",
            "Model runs that misbehaved, by kind: exception (the run raised), non_finite "
            "(NaN/inf outputs), stall (no answer within RUN_TIMEOUT_S), slow (over half of it), "
            "reload (the model reloaded itself after failed runs in a row).",
            ["model", "kind"],
            registry=r,
        )
        self.model_swaps = Counter(
            "fusionserve_model_swaps",
            "Loads of a new version while serving (repository API, watch mode): swapped (the "
            "new version answers now) or refused (it failed verification; the old one serves).",
            ["model", "outcome"],
            registry=r,
        )
        # -- Prediction monitoring ---------------------------------------------------------------
        self.predictions = Counter(
            "fusionserve_predictions",
            "Predicted class per head (the class mix).",
            ["model", "task", "label"],
            registry=r,
        )
        self.confidence = Histogram(
            "fusionserve_prediction_confidence",
            "Probability of the predicted class per head (calibrated).",
            ["model", "task"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.out_of_domain = Counter(
            "fusionserve_out_of_domain",
            "Items whose image or text was flagged out of the model's domain, per side "
            "(counted whether answered or refused): a rising rate is input drift.",
            ["model", "side"],
            registry=r,
        )
        self.low_confidence = Counter(
            "fusionserve_low_confidence_predictions",
            "Predictions whose top probability is below LOW_CONFIDENCE_THRESHOLD, per head.",
            ["model", "task"],
            registry=r,
        )

    def child(self, metric: M, *labels: str) -> M:
        """`metric.labels(*labels)`, looked up once: labels() validates and locks on every call,
        some fifteen times per request on the event loop (issue 26). Never for a metric whose
        series are removed (`model_info`): a cached child would outlive its removal."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]
