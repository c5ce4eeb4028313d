"""A real `fusionserve serve` (uvicorn) subprocess for tests: start it on a free port, wait until
it says it is ready, hand it over, and make sure it is gone afterwards (SIGTERM, then kill)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ready(base: str) -> bool:
    """The default readiness check: what an orchestrator's probe sees."""
    return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200


@contextmanager
def running_server(
    bundle_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready: Callable[[str], bool] = answers_ready,
    ready_timeout_s: float = 60.0,
    stop_timeout_s: float = 30.0,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Yield (process, base URL) once `ready(base)` holds; stdout and stderr go to proc.stdout.

    One intra-op thread unless `env` says otherwise: the test machines are small and shared. A
    process still running on exit gets SIGTERM and `stop_timeout_s` to drain, then is killed.
    """
    port = free_port()
    full_env = {**os.environ, "FUSIONSERVE_INTRA_OP_THREADS": "1", **(env or {})}
    cmd = [
        sys.executable, "-m", "fusionserve.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--bundle-dir", str(bundle_dir), "--log-level", "warning",
        *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
            try:
                if ready(base):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
