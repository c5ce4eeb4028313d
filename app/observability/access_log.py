"""One access line per request: who asked what of which model, how it ended, where time went.

Only metadata: method, route template (never the raw path or query string), status, error code,
model, byte counts and phase timings. Request text and image content never reach a log line.
Probes and scrapes log at DEBUG so they do not drown traffic at INFO.
"""

from __future__ import annotations

import logging
from typing import Any

from app.observability.record import RequestRecord

logger = logging.getLogger("fusionserve.access")


def access_fields(record: RequestRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event": "access",
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "model": record.model,
        "duration_ms": round(record.duration_s * 1000, 3),
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
    }
    if record.error_code:
        fields["error_code"] = record.error_code
    if record.timings is not None and record.timings.total > 0:
        fields["timing_ms"] = record.timings.as_ms()
        fields["batch_size"] = record.timings.batch_size
    return fields


def log_access(record: RequestRecord) -> None:
    level = logging.INFO if record.traffic else logging.DEBUG
    if not logger.isEnabledFor(level):
        return
    # makeRecord + handle is logger.log without its caller lookup (a walk up the stack per
    # line): the line names its logger, never a source line (issue 26's profile).
    line = logger.makeRecord(
        logger.name,
        level,
        __file__,
        0,
        "%s %s %d %.1fms",
        (record.method, record.route, record.status, record.duration_s * 1000),
        None,
        extra={"fields": access_fields(record), "request_id": record.request_id},
    )
    logger.handle(line)
