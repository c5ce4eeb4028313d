"""Optional sampling profiles of a server process under load (py-spy), and their summary.

py-spy attaches to the running server without pausing it (`--nonblocking`) and records
collapsed stacks of the non-idle threads. The summary ranks functions by samples spent in them
(self) and under them (inclusive), and threads by their share — enough to see whether HTTP
parsing, image decoding, the event loop or the graph run dominates. A second profile with
`--gil` samples only the thread holding the GIL: on a small machine the GIL-bound share is the
part of the service that cannot use a second core.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE_HZ = 250
_FRAME_LOCATION = re.compile(r" \((?P<file>[^()]*):\d+\)$")


def py_spy() -> str | None:
    """Path of the py-spy executable, or None (profiling is then skipped)."""
    return shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid: int, raw_path: Path, gil: bool = False) -> Iterator[None]:
    """Record collapsed stacks of `pid` to raw_path while the block runs; with `gil`, only
    the thread holding the GIL is sampled (the serial, pure-Python part of the work)."""
    executable = py_spy()
    if executable is None:
        yield
        return
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        executable, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw",
        "--threads", "--nonblocking", "--output", str(raw_path), *(["--gil"] if gil else []),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attach before the load starts
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def short_frame(frame: str) -> str:
    """'fn (/long/path/app/x.py:12)' → 'fn (app/x.py)' — stable across lines and machines."""
    match = _FRAME_LOCATION.search(frame)
    if not match:
        return frame
    parts = Path(match.group("file")).parts
    tail = "/".join(parts[-2:]) if len(parts) > 1 else match.group("file")
    return f"{frame[: match.start()]} ({tail})"


def summarize(raw_path: Path, top: int = 25) -> str:
    """Text summary of a py-spy raw file: threads, self time and inclusive time rankings."""
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, calls = frames[0], [short_frame(f) for f in frames[1:]]
        total += count
        threads[re.sub(r"\s*\(0x[0-9a-f]+\)", "", thread)] += count
        if calls:
            self_time[calls[-1]] += count
        for name in set(calls):
            inclusive[name] += count
    if total == 0:
        return f"{raw_path.name}: no samples\n"

    def table(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"{title}:"]
        rows += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return rows

    lines = [f"{raw_path.name}: {total} samples at {RATE_HZ} Hz (non-idle threads)"]
    lines += table("threads", threads)
    lines += table("self (where the samples were)", self_time)
    lines += table("inclusive (the samples under each function)", inclusive)
    return "\n".join(lines) + "\n"
