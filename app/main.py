"""The application factory: settings → registry + inference service → FastAPI app.

`create_app` composes independent pieces (error handlers, middlewares, routers) so other layers
(metrics, logging, auth, shutdown) plug in without touching the data path. The lifespan starts
loading bundles in the background — /health/live answers at once, /health/ready turns 200 when
every model is warm — and on shutdown drains the batchers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app.body_limit import BodySizeLimit
from app.errors import install_error_handlers
from app.hooks import ServingHooks
from app.inference import InferenceService
from app.observability import Observability
from app.oip.install import install_oip
from app.openapi_docs import install_openapi
from app.registry import ModelRegistry
from app.routes import batch, health, models, predict, v2
from app.security import install_security
from app.settings import Settings
from app.shutdown import install_drain
from app.ui import router as ui_router

ROUTERS = (predict.router, batch.router, models.router, health.router, v2.router, ui_router)
DESCRIPTION = (
    "Multi-modal (image + text), multi-task medical classifiers served from ONNX bundles. "
    'Errors are always `{"error": {"code": ..., "message": ...}}`; under /v2 (Open Inference '
    'Protocol) `{"error": "..."}` with the code in the `X-Error-Code` header.'
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: InferenceService = app.state.service
    loading = asyncio.create_task(service.registry.load_all(), name="load-bundles")
    app.state.loading = loading
    try:
        yield
    finally:
        service.registry.draining = True
        if not loading.done():
            loading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loading
        await service.close()


def install_middlewares(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)


def create_app(settings: Settings | None = None, hooks: ServingHooks | None = None) -> FastAPI:
    """Build the service; with no arguments, settings come from FUSIONSERVE_* variables."""
    settings = settings or Settings()
    observability = Observability(settings, hooks)  # logging, metrics; wraps the caller's hooks
    hooks = observability.hooks
    registry = ModelRegistry(settings, hooks)
    app = FastAPI(
        title="fusionserve",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_openapi serves /docs and /redoc offline, under a CSP
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.hooks = hooks
    app.state.service = InferenceService(settings, registry, hooks)
    install_error_handlers(app)
    install_middlewares(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    install_drain(app, settings)  # in-flight count; SIGTERM → not ready, drain, exit
    install_security(app, settings)  # API key, CORS, security headers (after the OpenAPI hook)
    observability.install(app, list(registry.models))  # outer middleware, GET /metrics
    install_oip(app)  # outermost: /v2 errors in the protocol's shape
    return app
