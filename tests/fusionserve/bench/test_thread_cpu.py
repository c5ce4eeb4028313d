"""CPU per request by thread role: py-spy's thread names, the kernel's per-thread CPU."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fusionserve.bench.profile import py_spy
from fusionserve.bench.thread_cpu import (
    OTHER,
    ROLES,
    parse_dump,
    per_role,
    role_of,
    thread_cpu_s,
    thread_names,
)

DUMP = """Process 19318: python -m fusionserve.cli serve
Python v3.11.7 (/usr/bin/python3.11)

Thread 19318 (idle): "MainThread"
    run (asyncio/runners.py:118)
Thread 19320 (active): "preprocess_0"
    _work (app/preprocess.py:127)
Thread 19330 (idle): "inference-medpix-student-0"
    wait (threading.py:327)
"""

LOOP, WORKERS, INFERENCE = (role for role, _ in ROLES)


def test_a_dump_names_each_thread_and_names_give_roles() -> None:
    names = parse_dump(DUMP)
    assert names == {
        19318: "MainThread",
        19320: "preprocess_0",
        19330: "inference-medpix-student-0",
    }
    assert [role_of(n) for n in names.values()] == [LOOP, WORKERS, INFERENCE]
    assert role_of("uvloop_0") == role_of(None) == OTHER


def test_cpu_per_request_sums_each_roles_threads() -> None:
    names = {1: "MainThread", 2: "preprocess_0", 3: "preprocess_1", 4: "inference-m-0"}
    before = {1: 10.0, 2: 5.0, 3: 5.0, 4: 20.0, 5: 1.0}
    after = {1: 10.5, 2: 5.6, 3: 5.4, 4: 23.0, 5: 1.1, 6: 0.2}  # 6: a thread started meanwhile
    rows = per_role(before, after, names, requests=1000)
    assert [(r.role, r.threads) for r in rows] == [
        (LOOP, 1),
        (WORKERS, 2),
        (INFERENCE, 1),
        (OTHER, 2),
    ]
    assert [round(r.cpu_ms_per_request, 3) for r in rows] == [0.5, 1.0, 3.0, 0.3]


BUSY = """
import threading, time
def spin():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        sum(range(1000))
threading.Thread(target=spin, name="preprocess_0", daemon=True).start()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.skipif(py_spy() is None, reason="naming threads needs py-spy")
def test_a_real_process_busy_thread_is_named_and_charged() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        names = thread_names(proc.pid)
        assert sorted(names.values()) == ["MainThread", "preprocess_0"]
        before = thread_cpu_s(proc.pid)
        time.sleep(0.5)
        rows = {r.role: r for r in per_role(before, thread_cpu_s(proc.pid), names, requests=1)}
        assert rows[WORKERS].cpu_ms_per_request > 100  # it spun for most of the half second
        assert rows.get(LOOP) is None or rows[LOOP].cpu_ms_per_request < 50  # asleep
    finally:
        proc.kill()
        proc.wait()
