"""The GPU readiness bench, run here on the CPU provider: the graph sweep, the output
comparison, the served sweep's mean batch, the fallback samples and the provider guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from fusionserve.bench import gpu, gpu_graph, gpu_served
from fusionserve.bench.samples import multipart_body

CPU = ["CPUExecutionProvider"]


def test_graph_sweep_and_parity_on_real_sessions(bench_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = bench_bundle_dir / "medpix-student"
    samples = gpu.samples_for("medpix", tmp_path / "no-datasets", 4)
    assert samples and all(s.content_type == "image/png" and s.text for s in samples)
    settings = Settings(bundle_dir=bench_bundle_dir, providers=CPU, intra_op_threads=1)
    items = gpu_graph.prepared(bundle, settings, samples, 5)
    rows = gpu_graph.sweep(bundle, settings, items, [1, 4], min_seconds=0.05)
    assert [(r.batch, r.provider, r.io_binding) for r in rows] == [
        (1, CPU[0], False),
        (4, CPU[0], False),
    ]
    assert all(r.runs >= 5 and r.items_per_s > 0 and r.median_ms > 0 for r in rows)
    bound = settings.model_copy(update={"io_binding": "on"})
    assert gpu_graph.max_abs_difference(bundle, bound, settings, items) < 1e-6


def test_provider_guard_stops_a_cpu_fallback() -> None:
    gpu.require("CUDAExecutionProvider", "CUDAExecutionProvider")
    with pytest.raises(SystemExit, match="runs on CPUExecutionProvider"):
        gpu.require("CUDAExecutionProvider", "CPUExecutionProvider")


@pytest.mark.slow
def test_served_sweep_reports_the_formed_batch(bench_bundle_dir: Path, tmp_path: Path) -> None:
    samples = gpu.samples_for("medpix", tmp_path / "no-datasets", 4)
    env = {"FUSIONSERVE_PROVIDERS": "CPUExecutionProvider", "FUSIONSERVE_LOG_LEVEL": "warning"}
    rows = gpu_served.sweep(
        bench_bundle_dir, "medpix-student", [1, 4], [multipart_body(s) for s in samples],
        concurrency=4, requests=40, clients=2, env=env,
    )  # fmt: skip
    assert [(r.max_batch_size, r.provider, r.failures) for r in rows] == [
        (1, CPU[0], 0),
        (4, CPU[0], 0),
    ]
    assert rows[0].mean_batch == 1.0
    assert rows[1].mean_batch is not None and 1.0 <= rows[1].mean_batch <= 4.0
    assert all(r.requests == 40 and r.requests_per_s > 0 for r in rows)
    text = gpu.render(
        {"onnxruntime": "x", "available_providers": CPU, "cpu_count": 2, "graph": [],
         "parity": {"medpix-student": 0.0}, "served": [r.__dict__ for r in rows]},
        "python -m fusionserve.bench.gpu",
    )  # fmt: skip
    assert "| medpix-student | CPUExecutionProvider | 4 | 4 | 40 | 0 |" in text
