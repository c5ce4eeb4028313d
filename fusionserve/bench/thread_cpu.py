"""Exact CPU per request by thread role, from the kernel's per-thread accounting (/proc).

The per-stage table (`fusionserve.bench.stages`) splits CPU by py-spy's samples, and py-spy counts
a thread that is runnable, waiting for a core or for the GIL, where it waits: on a saturated
2-core machine that charged the event loop's thread some 0.4 ms per request of "uvloop native"
work that /proc showed it never got. Here each thread's user + system time over the same
requests is read from /proc/PID/task/TID/stat. Python threads are named by a py-spy dump (the
OS sees every thread as 'python'); threads without Python frames (onnxruntime's pools, native
helpers) fall under "other". The kernel counts in clock ticks (10 ms on most hosts): over the
bench's 800 requests at c = 32 that is 0.01 ms per request, over a handful of requests a
thread may read 0.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fusionserve.bench.profile import py_spy

ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop (HTTP, routing, answers)", ("MainThread",)),
    ("preprocessing workers (decode, tokenize)", ("preprocess_",)),
    ("inference threads (batches, graph)", ("inference-",)),
)
OTHER = "other threads"
_DUMPED_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "([^"]*)"', re.MULTILINE)


@dataclass(frozen=True)
class ThreadCpuRow:
    role: str
    threads: int  # threads of this role that ran during the pass
    cpu_ms_per_request: float


def thread_names(pid: int) -> dict[int, str]:
    """Thread id → Python thread name, from one py-spy dump ({} without py-spy)."""
    executable = py_spy()
    if executable is None:
        return {}
    dump = subprocess.run(
        [executable, "dump", "--nonblocking", "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    return parse_dump(dump)


def parse_dump(dump: str) -> dict[int, str]:
    return {int(tid): name for tid, name in _DUMPED_THREAD.findall(dump)}


def stat_cpu_s(stat: Path) -> float | None:
    """utime + stime in seconds from a /proc stat file (a process's or a thread's), None when it
    cannot be read (not Linux, or the process or thread is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """Thread id → CPU seconds so far; threads gone meanwhile are skipped."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (seconds := stat_cpu_s(task / "stat")) is not None:
            found[int(task.name)] = seconds
    return found


def role_of(name: str | None) -> str:
    for role, prefixes in ROLES:
        if name is not None and name.startswith(prefixes):
            return role
    return OTHER


def per_role(
    before: Mapping[int, float],
    after: Mapping[int, float],
    names: Mapping[int, str],
    requests: int,
) -> list[ThreadCpuRow]:
    """CPU per request by role, in ROLES order then other (roles that used no CPU left out)."""
    cpu: dict[str, float] = {}
    threads: Counter[str] = Counter()
    for tid, seconds in after.items():
        used = seconds - before.get(tid, 0.0)
        if used > 0:
            role = role_of(names.get(tid))
            cpu[role] = cpu.get(role, 0.0) + used
            threads[role] += 1
    order = [*(role for role, _ in ROLES), OTHER]
    return [
        ThreadCpuRow(role, threads[role], 1000.0 * cpu[role] / requests)
        for role in order
        if role in cpu and requests > 0
    ]
