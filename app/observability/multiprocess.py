"""Correct metrics with several uvicorn workers: prometheus-client's multiprocess mode.

With PROMETHEUS_MULTIPROC_DIR set (before the worker imports prometheus_client — the environment
is inherited, so set it for `fusionserve serve`), each worker writes its values to files in that
directory and whichever worker answers GET /metrics sums them all. Enforced at startup:
FUSIONSERVE_WORKERS > 1 without the directory is an error, because every scrape would report only
the worker that happened to answer. At each worker's start, live-gauge files of processes that no
longer exist (a crashed or restarted worker) and this pid's own leftovers (pid reuse across a
container restart) are removed, so in-flight and queue depth never count ghosts. Counter files
are kept: totals stay monotonic across worker restarts. Point the directory at an empty tmpfs or
emptyDir per container.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.framework_compat import live_gauge_pids, multiprocess_values

ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsConfigError(RuntimeError):
    """The process layout would make metrics wrong; refuse to start."""


def multiproc_dir() -> Path | None:
    raw = os.environ.get(ENV) or os.environ.get(ENV.lower())
    return Path(raw) if raw else None


def check_layout(workers: int) -> Path | None:
    """The multiprocess directory in use (None: single process); raise if metrics would be wrong."""
    path = multiproc_dir()
    if path is None:
        if workers > 1:
            raise MetricsConfigError(
                f"FUSIONSERVE_WORKERS={workers} needs {ENV} (an empty, writable directory, e.g. "
                f"a tmpfs) so /metrics aggregates every worker; or run one worker per container "
                f"and scale with replicas, or set FUSIONSERVE_METRICS_ENABLED=false"
            )
        return None
    if not multiprocess_values():
        raise MetricsConfigError(
            f"{ENV} was set after prometheus_client was imported; set it in the environment "
            f"of the server process instead"
        )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_dir(path: Path) -> None:
    """Create the directory; drop live-gauge files of dead processes and of this pid."""
    path.mkdir(parents=True, exist_ok=True)
    for pid in live_gauge_pids(path):
        if pid == os.getpid() or not _alive(pid):
            mark_process_dead(pid, str(path))


def exposition(registry: CollectorRegistry, path: Path | None) -> bytes:
    """The scrape body: this app's registry, or every worker's files summed."""
    if path is None:
        return generate_latest(registry)
    collected = CollectorRegistry()
    MultiProcessCollector(collected, str(path))
    return generate_latest(collected)
