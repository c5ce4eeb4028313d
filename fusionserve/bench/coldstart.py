"""Server subprocesses: start one, time process start → ready, read its peak RSS, stop it.

Cold start is measured from just before `Popen` (interpreter start included) to the first
200 from the readiness probe, polled every few milliseconds — what an orchestrator waiting on
/health/ready sees. Peak RSS is the kernel's high-water mark (VmHWM) for the server process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

POLL_S = 0.005


class ServerFailed(RuntimeError):
    """The server exited or never became ready; the message ends with its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """The process's resident-set high-water mark in MiB (Linux /proc), None elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return None


@dataclass
class ServerProcess:
    """A running server and what its start cost."""

    proc: subprocess.Popen[bytes]
    base_url: str
    ready_s: float
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.proc.pid)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-3000:]
    return ""


def start_server(
    cmd: Sequence[str],
    base_url: str,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health/ready",
    timeout_s: float = 180.0,
    cwd: Path | None = None,
) -> ServerProcess:
    """Start `cmd`, wait until GET base_url+ready_path answers 200, return the running server."""
    log_path = Path(tempfile.mkstemp(prefix="fusionserve-bench-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = started + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                raise ServerFailed(
                    f"{cmd[0]} exited with {proc.returncode}:\n{_log_tail(log_path)}"
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get(base_url + ready_path).status_code == 200:
                    break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise ServerFailed(f"not ready after {timeout_s:.0f}s:\n{_log_tail(log_path)}")
            time.sleep(POLL_S)
    return ServerProcess(proc, base_url, time.perf_counter() - started, log_path)


@contextlib.contextmanager
def running_server(
    cmd: Sequence[str],
    base_url: str,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health/ready",
    cwd: Path | None = None,
) -> Iterator[ServerProcess]:
    """start_server as a context manager that always stops the process."""
    server = start_server(cmd, base_url, env, ready_path, cwd=cwd)
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            server.log_path.unlink()
