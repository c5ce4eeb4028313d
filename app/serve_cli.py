"""`fusionserve serve`: run the HTTP service with uvicorn.

Command-line options override FUSIONSERVE_* variables by exporting them, so every uvicorn worker
(a separate process building its app through the factory) sees the same settings.
"""

from __future__ import annotations

import argparse
import os

OVERRIDES = {
    "host": "FUSIONSERVE_HOST",
    "port": "FUSIONSERVE_PORT",
    "bundle_dir": "FUSIONSERVE_BUNDLE_DIR",
    "workers": "FUSIONSERVE_WORKERS",
    "models": "FUSIONSERVE_MODELS",
    "providers": "FUSIONSERVE_PROVIDERS",
    "precision": "FUSIONSERVE_PRECISION",
    "log_level": "FUSIONSERVE_LOG_LEVEL",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (FUSIONSERVE_HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (FUSIONSERVE_PORT, default 8000)")
    parser.add_argument("--bundle-dir", help="bundles directory (FUSIONSERVE_BUNDLE_DIR)")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    parser.add_argument("--models", help="comma list of bundle names to load (default: all)")
    parser.add_argument("--providers", help="comma list of onnxruntime execution providers")
    parser.add_argument("--precision", choices=["fp32", "int8"], help="graph precision")
    parser.add_argument("--log-level", help="log level (FUSIONSERVE_LOG_LEVEL, default info)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.header_deadline import HeaderDeadlineProtocol
    from app.settings import Settings

    for attr, env in OVERRIDES.items():
        value = getattr(args, attr, None)
        if value is not None:
            os.environ[env] = str(value)
    settings = Settings()  # validate once here, before any worker starts
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
        server_header=False,  # do not advertise the server software
        http=HeaderDeadlineProtocol,  # BODY_TIMEOUT_S for the headers too
    )
    return 0
