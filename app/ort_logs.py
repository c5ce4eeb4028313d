"""onnxruntime's own log lines through our (JSON) logger, and its telemetry events off.

onnxruntime logs from C++ straight to file descriptor 2, past Python's logging, so its lines
would break a JSON log stream. Its Python API has no log callback, so `ort_logs_to_logger` points
fd 2 at a pipe while a session is created (where it logs: provider fallbacks, graph
clean-ups): onnxruntime's lines are re-emitted as records of the `onnxruntime` logger after fd 2
is restored; any other bytes written meanwhile go straight through to the real stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

import onnxruntime as ort

logger = logging.getLogger("onnxruntime")
ANSI = re.compile(rb"\x1b\[[0-9;]*m")
ORT_LINE = re.compile(
    r"^\S+ \S+ \[(?P<severity>[VIWEF]):onnxruntime:[^,\]]*,? ?(?P<where>[^\]]*)\] ?(?P<text>.*)$"
)
LEVELS = {"V": logging.DEBUG, "I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR,
          "F": logging.CRITICAL}  # fmt: skip
_LOCK = threading.Lock()

ort.disable_telemetry_events()  # Windows ETW events; a no-op elsewhere, but never on


def parse(line: bytes) -> tuple[int, str] | None:
    """(level, message) of an onnxruntime log line; None for anything else."""
    text = ANSI.sub(b"", line).decode("utf-8", "replace").strip()
    match = ORT_LINE.match(text)
    if match is None:
        return None
    where = match["where"].strip()
    return LEVELS[match["severity"]], f"{match['text']} ({where})" if where else match["text"]


def _pump(read_fd: int, real_stderr: int, records: list[tuple[int, str]]) -> None:
    with os.fdopen(read_fd, "rb", closefd=False) as pipe:
        for line in pipe:
            parsed = parse(line)
            if parsed is None:
                os.write(real_stderr, line)
            else:
                records.append(parsed)


@contextlib.contextmanager
def ort_logs_to_logger() -> Iterator[None]:
    """Route onnxruntime's stderr lines to the `onnxruntime` logger for the duration."""
    with _LOCK:
        sys.stderr.flush()
        real_stderr = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        records: list[tuple[int, str]] = []
        pump = threading.Thread(target=_pump, args=(read_fd, real_stderr, records), daemon=True)
        pump.start()
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(real_stderr, 2)  # closes the pipe's last write end: the pump sees EOF
            pump.join(timeout=5)
            os.close(read_fd)
            os.close(real_stderr)
    for level, message in records:
        logger.log(level, message)
