"""Wire observability into an app: logging, metrics registry, hooks, middleware, GET /metrics.

`create_app` builds one `Observability` before the registry (the hooks must exist when models
start loading) and calls `install` after its own middlewares, so ours is the outermost.
"""

from __future__ import annotations

from pathlib import Path

import prometheus_client
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from app.hooks import ServingHooks
from app.observability.logging_setup import configure_logging
from app.observability.metrics import ServiceMetrics
from app.observability.middleware import ObservabilityMiddleware
from app.observability.multiprocess import check_layout, prepare_dir
from app.observability.recorder import ObservingHooks
from app.observability.route import router as metrics_router
from app.settings import Settings


class Observability:
    """Per-app observability state; `app.state.observability` after `install`."""

    def __init__(self, settings: Settings, hooks: ServingHooks | None = None) -> None:
        configure_logging(settings.log_format, settings.log_level)
        self.registry = CollectorRegistry()
        self.metrics: ServiceMetrics | None = None
        self.multiproc_dir: Path | None = None
        if settings.metrics_enabled:
            self.multiproc_dir = check_layout(settings.workers)
            # *_created samples only add a series per label set; rate() needs none of them.
            prometheus_client.disable_created_metrics()
            if self.multiproc_dir is not None:
                prepare_dir(self.multiproc_dir)
            else:  # per-process collectors mean nothing summed over workers
                ProcessCollector(registry=self.registry)
                PlatformCollector(registry=self.registry)
                GCCollector(registry=self.registry)
            self.metrics = ServiceMetrics(self.registry)
        self.hooks = ObservingHooks(self.metrics, hooks)

    def install(self, app: FastAPI, model_names: list[str]) -> None:
        app.state.observability = self
        for name in model_names:
            self.hooks.model_known(name)
        app.add_middleware(ObservabilityMiddleware, metrics=self.metrics, routes=app.router.routes)
        if self.metrics is not None:
            app.include_router(metrics_router)
