"""The per-stage table and the flame graph from py-spy raw stacks (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionserve.bench.flamegraph import render
from fusionserve.bench.stages import stage_table

RAW = "\n".join(
    [
        "thread (1);_worker (/x/concurrent/futures/thread.py:80) 40",
        "thread (2);run (/x/app/runtime.py:9);run (/v/onnxruntime/capi/"
        "onnxruntime_inference_collection.py:266) 30",
        "thread (3);prepare (/x/app/preprocess.py:5);_decode (/x/app/contract/image.py:9);"
        "load (/v/PIL/ImageFile.py:2) 20",
        "MainThread;run (/x/app/serve_cli.py:3);emit (/usr/lib/logging/__init__.py:1) 10",
    ]
)


def test_samples_go_to_the_nearest_known_stage_and_share_the_measured_cpu(tmp_path: Path) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(RAW + "\n")
    rows = {r.stage: r for r in stage_table(raw, cpu_ms_per_request=6.0)}
    # py-spy samples running or runnable threads only: a worker at its queue is being woken
    assert rows["thread hand-offs (executor, futures, wake-ups)"].share == 0.4
    assert rows["graph run (onnxruntime)"].cpu_ms_per_request == pytest.approx(1.8)
    assert rows["image decode + resize"].cpu_ms_per_request == pytest.approx(1.2)
    assert rows["request ids, access log, metrics"].cpu_ms_per_request == pytest.approx(0.6)
    assert sum(r.share for r in rows.values()) == pytest.approx(1.0)
    assert sum(r.cpu_ms_per_request or 0 for r in rows.values()) == pytest.approx(6.0)


# py-spy before 0.4 names a frame by class and function ('PreprocessPool._work (...)'), 0.4 by
# function alone ('_work (...)', 'run (asyncio/runners.py:118)'): the same stage either way. A
# worker at its queue's get and a batch wait are hand-offs (threads being woken), the event
# loop's own run is uvloop's native work, and the batcher's loop (also `_work`) and a worker's
# job are batcher work.
QUALIFIED = (
    "thread (1);PreprocessPool._work (/x/app/preprocess.py:90) 5\n"
    "thread (2);_work (/x/app/batcher.py:1);BatchQueue.take (/x/app/batch_queue.py:9);"
    "Condition.wait (threading.py:327) 5\n"
    "MainThread;Server.run (/x/uvicorn/server.py:86);"
    "Runner.run (/usr/lib/asyncio/runners.py:118) 6\n"
    "thread (2);_work (/x/app/batcher.py:1);BatchQueue.put (/x/app/batch_queue.py:9) 4\n"
)
BARE = (
    "thread (1);run (/usr/lib/threading.py:982);_work (/x/app/preprocess.py:127) 4\n"
    "thread (2);_work (/x/app/batcher.py:1);take (/x/app/batch_queue.py:9);"
    "wait (threading.py:327) 6\n"
    "MainThread;run (/x/uvicorn/server.py:86);run (/usr/lib/asyncio/runners.py:118) 6\n"
    "thread (3);_work (/x/app/preprocess.py:127);prepare (/x/app/preprocess.py:60) 4\n"
)


@pytest.mark.parametrize("stacks", [QUALIFIED, BARE], ids=["py-spy<0.4", "py-spy 0.4"])
def test_wake_ups_and_the_event_loop_are_stages_under_either_frame_naming(
    tmp_path: Path, stacks: str
) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(stacks)
    rows = {r.stage: r.share for r in stage_table(raw, cpu_ms_per_request=1.0)}
    assert rows == {
        "thread hand-offs (executor, futures, wake-ups)": 0.5,
        "event loop, native (uvloop: poll, socket I/O, dispatch)": 0.3,
        "batcher + queues": 0.2,
    }


def test_flame_graph_is_an_svg_with_every_wide_frame(tmp_path: Path) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(RAW + "\n")
    svg = tmp_path / "p.svg"
    render(raw, svg, "test")
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert "contract/image.py" in text and "100 samples" in text and "{y" not in text
