"""Where a served request's time goes, by stage, from a py-spy recording of the server under load.

Each sample is charged to one stage: the frame nearest the leaf that belongs to a known stage
decides (a numpy call inside the image transform is image decoding; a logging call inside the
access-log middleware is logging). A sample whose leaf is the event loop's own run call or an
idle pool worker is a wait (select, an empty work queue), not work. Samples are thread-time, and
a thread waiting for the GIL or for a core on a shared machine counts where it waits, so each
working stage's CPU per request is its share of the working samples times the CPU per request
the process measured over the same requests.
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
        ("futures/thread.py", "asyncio/futures.py", "futures/_base.py", "threading.py"),
    ),
    ("HTTP protocol (uvicorn)", ("uvicorn/protocols/", "header_deadline.py", "httptools", "h11")),
    (
        "batcher + queues",
        ("app/batcher.py", "app/batch_queue.py", "app/preprocess.py", "app/inference.py"),
    ),
    (
        "ASGI middleware, routing, FastAPI",
        ("starlette/", "fastapi/", "app/", "telemetry/", "uvicorn/middleware/"),
    ),
)
IDLE = "other"
WAITING = "waiting (event loop select, idle workers)"
_WAIT_LEAVES = ("Runner.run (asyncio/runners.py)", "_worker (futures/thread.py)", "select (")
# An idle preprocessing worker (its job queue's get) or an inference thread waiting for a batch
# (the batch queue's condition): the leaf, or the caller of a threading wait at the leaf.
_WAIT_FRAMES = ("PreprocessPool._work (app/preprocess.py)", "BatchQueue.take (app/batch_queue.py)")


def _bare(frame: str) -> str:
    """'Runner.run (asyncio/runners.py)' → 'run (asyncio/runners.py)': py-spy 0.4 names a
    frame by its function alone, earlier versions by class and function."""
    name, sep, where = frame.partition(" (")
    return f"{name.rpartition('.')[2]}{sep}{where}"


_BARE_WAIT_LEAVES = tuple(_bare(f) for f in (*_WAIT_LEAVES, *_WAIT_FRAMES))
_BARE_WAIT_FRAMES = tuple(_bare(f) for f in _WAIT_FRAMES)


def _waiting(frames: list[str]) -> bool:
    """A wait: the leaf is the event loop's own run (its poll and dispatch are native code) or
    a worker's blocking get, or a threading wait called from one of those."""
    if _bare(frames[-1]).startswith(_BARE_WAIT_LEAVES):
        return True
    return (
        len(frames) > 1
        and "wait (threading.py)" in frames[-1]
        and _bare(frames[-2]).startswith(_BARE_WAIT_FRAMES)
    )


@dataclass(frozen=True)
class StageRow:
    stage: str
    samples: int
    share: float  # of all samples
    cpu_ms_per_request: float | None  # share of working samples × measured CPU per request


def _stage(frames: list[str]) -> str:
    if not frames or _waiting(frames):
        return WAITING
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    return IDLE


def stage_table(raw_path: Path, cpu_ms_per_request: float | None) -> list[StageRow]:
    """Rows in STAGES order (then other work, then waits) from a raw py-spy file; CPU per
    request is split over the working stages when the process's CPU per request is known."""
    counts: Counter[str] = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        counts[_stage([short_frame(f) for f in stack.split(";")[1:]])] += int(count_text)
    total = sum(counts.values()) or 1
    working = (total - counts[WAITING]) or 1
    rows = []
    for name in [*(name for name, _ in STAGES), IDLE, WAITING]:
        if not counts[name]:
            continue
        cpu = None
        if cpu_ms_per_request is not None and name != WAITING:
            cpu = cpu_ms_per_request * counts[name] / working
        rows.append(StageRow(name, counts[name], counts[name] / total, cpu))
    return rows
