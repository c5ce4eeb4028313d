"""Where a served request's time goes, by stage, from a py-spy recording of the server under load.

Each sample is charged to one stage: the frame nearest the leaf that belongs to a known stage
decides (a numpy call inside the image transform is image decoding; a logging call inside the
access-log middleware is logging). py-spy records without `--idle` (`fusionserve.bench.profile`),
so it samples only threads the OS shows running or runnable: a sample at a blocking call (a
worker's queue get, a condition wait, the event loop's poll) is a thread being woken, not one
asleep, and counts as a hand-off; a sample whose leaf is the event loop's own run is uvloop's
native code (socket reads and writes, callback dispatch). Samples are thread-time, and a
thread runnable but waiting for a core on a saturated machine counts where it waits, so each
stage's CPU per request is its share of the samples times the CPU per request the process
measured over the same requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fusionserve.bench.profile import short_frame

# (stage, substrings of a short frame "fn (dir/file.py)"), checked in this order per frame
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("graph run (onnxruntime)", ("onnxruntime_inference_collection", "run_with_iobinding")),
    ("image decode + resize", ("contract/image.py", "PIL/")),
    ("tokenize", ("contract/text.py", "tokenizers")),
    ("postprocess + domain check", ("contract/domain.py", "app/postprocess.py", "postprocess (")),
    ("batch assembly (stack, split)", ("app/runtime.py", "app/loaded_bundle.py")),
    (
        "multipart + body read",
        ("python_multipart/", "formparsers.py", "app/inputs.py", "app/multipart.py", "stream ("),
    ),
    (
        "response JSON",
        ("orjson", "pydantic/", "responses.py", "json/", "app/answer.py", "to_response ("),
    ),
    (
        "request ids, access log, metrics",
        ("logging/", "prometheus_client/", "observability/", "uuid.py"),
    ),
    (
        "thread hand-offs (executor, futures, wake-ups)",
        (
            "futures/thread.py",
            "asyncio/futures.py",
            "futures/_base.py",
            "threading.py",
            "_work (app/preprocess.py)",  # a preprocessing worker in its queue's get
        ),
    ),
    ("HTTP protocol (uvicorn)", ("uvicorn/protocols/", "header_deadline.py", "httptools", "h11")),
    (
        "batcher + queues",
        ("app/batcher.py", "app/batch_queue.py", "app/preprocess.py", "app/inference.py"),
    ),
    (
        "event loop, native (uvloop: poll, socket I/O, dispatch)",
        ("asyncio/runners.py", "asyncio/base_events.py", "selectors.py"),
    ),
    (
        "ASGI middleware, routing, FastAPI",
        ("starlette/", "fastapi/", "app/", "telemetry/", "uvicorn/middleware/"),
    ),
)
IDLE = "other"


@dataclass(frozen=True)
class StageRow:
    stage: str
    samples: int
    share: float  # of all samples
    cpu_ms_per_request: float | None  # share × measured CPU per request


def _stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    return IDLE


def stage_table(raw_path: Path, cpu_ms_per_request: float | None) -> list[StageRow]:
    """Rows in STAGES order (then other work) from a raw py-spy file; CPU per request is split
    over the stages when the process's CPU per request is known."""
    counts: Counter[str] = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        counts[_stage([short_frame(f) for f in stack.split(";")[1:]])] += int(count_text)
    total = sum(counts.values()) or 1
    rows = []
    for name in [*(name for name, _ in STAGES), IDLE]:
        if not counts[name]:
            continue
        share = counts[name] / total
        cpu = None if cpu_ms_per_request is None else cpu_ms_per_request * share
        rows.append(StageRow(name, counts[name], share, cpu))
    return rows
