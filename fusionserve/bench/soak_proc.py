"""What a long-running server holds, read from Linux /proc: resident memory, open file
descriptors and threads. A leak of any of them grows over a soak; these are its samples."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSample:
    t_s: float  # seconds since the soak started
    rss_mb: float
    fds: int
    threads: int


def sample_process(pid: int, t_s: float) -> ProcessSample:
    """One reading; OSError when the process is gone (the soak then fails loudly)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()
    return ProcessSample(
        t_s=t_s,
        rss_mb=int(fields["VmRSS"][0]) / 1024.0,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(fields["Threads"][0]),
    )
