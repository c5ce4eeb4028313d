"""Talking to a `fusionserve serve` started by a CI check: a free port, plain HTTP, readiness.

Standard library only: the checks run before (or beside) any venv that has httpx.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

READY_TIMEOUT_S = 180.0


def fail(message: str, prefix: str = "ci") -> None:
    print(f"{prefix}: FAIL: {message}", file=sys.stderr)
    raise SystemExit(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are answers, not exceptions."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(
    base: str, server: subprocess.Popen[bytes], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Until /health/ready answers 200; fails if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"server exited with {server.returncode} before becoming ready")
        try:
            status, _ = http("GET", f"{base}/health/ready")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    fail(f"/health/ready not 200 within {timeout_s:.0f}s")
