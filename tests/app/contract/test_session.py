"""Sessions as every side opens them: providers with CPU fallback, threads, optimisation."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from app.contract.session import (
    CPU,
    RuntimeOptions,
    concurrent_runs,
    intra_op_threads,
    max_batch_size,
    open_session,
    resolve_providers,
    session_options,
)


def test_resolve_providers_keeps_order_and_falls_back_to_cpu() -> None:
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU]
    requested = ["CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert resolve_providers(requested, available) == (
        ["CUDAExecutionProvider", "TensorrtExecutionProvider", CPU],
        [],
    )
    usable, missing = resolve_providers(["CUDAExecutionProvider", CPU], [CPU])
    assert usable == [CPU] and missing == ["CUDAExecutionProvider"]
    assert resolve_providers([], [CPU]) == ([CPU], [])


def test_session_options_follow_the_runtime_options() -> None:
    options = session_options(
        RuntimeOptions(intra_op_threads=2, inter_op_threads=1, graph_optimization="basic")
    )
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def test_intra_op_threads_auto_is_half_the_cores() -> None:
    assert intra_op_threads(0, cpu_count=2) == 1
    assert intra_op_threads(0, cpu_count=1) == 1
    assert intra_op_threads(0, cpu_count=16) == 8
    assert intra_op_threads(3, cpu_count=16) == 3


def test_max_batch_size_auto_is_small_on_a_cpu_and_large_on_a_gpu() -> None:
    assert max_batch_size(0, "cpu") == 4 and max_batch_size(0, "cuda") == 32
    assert max_batch_size(16, "cpu") == 16 and max_batch_size(1, "cuda") == 1  # set: as is


def test_concurrent_runs_auto_is_two_where_each_run_has_one_thread() -> None:
    assert concurrent_runs(0, "cpu", 0, cpu_count=2) == 2
    assert concurrent_runs(0, "cpu", 0, cpu_count=3) == 2
    assert concurrent_runs(0, "cpu", 0, cpu_count=16) == 1  # runs would share one 8-thread pool
    assert concurrent_runs(0, "cpu", 0, cpu_count=1) == 1  # one core: nothing to fill
    assert concurrent_runs(0, "cpu", 4, cpu_count=16) == 1  # threads sized by the user
    assert concurrent_runs(0, "cuda", 0, cpu_count=16) == 1
    assert concurrent_runs(3, "cuda", 0, cpu_count=16) == 3  # set: taken as is


def test_open_session_runs_on_cpu_when_a_provider_is_missing(tiny_bundle_dir: Path) -> None:
    graph = tiny_bundle_dir / "medpix-student" / "model.onnx"
    session = open_session(graph, RuntimeOptions(("NoSuchExecutionProvider", CPU), 1))
    assert session.get_providers() == [CPU]


def test_every_session_is_opened_here() -> None:
    """Serve, verify, export, recover and bench judge a graph under the same options: no code
    outside app/contract/session.py constructs an onnxruntime session itself."""
    root = Path(__file__).resolve().parents[3]
    own = root / "app" / "contract" / "session.py"
    callers = [
        str(path.relative_to(root))
        for package in ("app", "models", "fusionserve")
        for path in (root / package).rglob("*.py")
        if path != own and "InferenceSession(" in path.read_text(encoding="utf-8")
    ]
    assert callers == [], f"open sessions with app.contract.session.open_session: {callers}"
