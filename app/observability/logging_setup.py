"""Process logging: one stderr handler, JSON lines (default) or plain text, request id on each line.

Installed by the app factory, so each uvicorn worker formats its own lines; uvicorn's error
logger is routed through the same handler, and its access logger is silenced because our access
line (app.observability.access_log) replaces it — uvicorn's would print the query string and
the client address. Structured fields ride on a record as `extra={"fields": {...}}`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.observability.request_id import current_request_id

_HANDLER_FLAG = "_fusionserve_handler"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class RequestIdFilter(logging.Filter):
    """Stamps the current request id (if any) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            setattr(record, "request_id", current_request_id())  # noqa: B010
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := getattr(record, "request_id", None):
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:  # orjson: the access line is written on the event loop once per request
            return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson cannot write (an int beyond 64 bits): the slow way
            return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name]
        if request_id := getattr(record, "request_id", None):
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts += [f"{key}={value}" for key, value in fields.items() if value not in ("", None)]
        text = " ".join(str(p) for p in parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str, level: str) -> logging.Handler:
    """(Re)install the one root handler; idempotent, so building many apps adds no duplicates."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return handler
