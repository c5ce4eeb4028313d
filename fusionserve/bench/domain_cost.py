"""What the domain check adds to serving: the whole check's time over the graph's, per bundle.

    python -m fusionserve.bench.domain_cost [--exported exported]
        [--datasets-root ../shared/datasets] [--batch 1 8]

Each bundle with a domain check is loaded as served (`app.bundle_loader.load_bundle`, fp32,
one intra-op thread) and its task set's dev cases are prepared as served. The baseline is the
same graph cut to the task outputs (onnx's `Extractor`: every node only the check needs is
gone: input statistics, the early-block pools, the scoring); against it runs what serving
runs (`LoadedBundle.run_batch`: the full graph, the per-item split, and numpy scoring for
bundles whose graph does not score). Each batch runs through both back to back (which first
alternates), so the two see the same machine: the added time is the median of those paired
differences, robust to the drifts of a shared machine that whole-round medians were not
(their ratio moved 3-8 % between runs of the same bundles). Printed per bundle and batch size:
the baseline's median ms per item, the added ms per item, their sum, and the ratio (the
issue's budget: at most 0.05). Needs the `onnx` package (the train or dev extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.bundle_loader import load_bundle
from app.contract.graph import INPUT_NAMES, output_widths
from app.contract.manifest import MANIFEST_FILE, MODEL_FILE
from app.contract.session import CPU, open_session
from app.loaded_bundle import LoadedBundle
from app.runtime import OnnxModel, runtime_options
from app.settings import Settings
from fusionserve.bench.samples import load_dev_samples

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def _task_only(bundle: LoadedBundle) -> OnnxModel:
    """The bundle's fp32 graph cut to its task outputs, opened as serving opens it."""
    import onnx  # the train/dev extra: not part of the serving install
    from onnx.utils import Extractor

    graph = onnx.load(str(bundle.bundle_dir / MODEL_FILE))
    outputs = list(output_widths(bundle.manifest))
    cut = Extractor(graph).extract_model(list(INPUT_NAMES), outputs)
    options = runtime_options(bundle.settings)
    with tempfile.TemporaryDirectory(prefix="fusionserve-cut-") as workdir:
        path = Path(workdir) / MODEL_FILE
        onnx.save(cut, str(path))
        session = open_session(path, options)
    return OnnxModel(session, outputs, "fp32", "task-only", bundle.onnx.dynamic_text)


def _seconds(run: Callable[[list[Any]], object], batches: list[list[Any]]) -> float:
    start = time.perf_counter()
    for items in batches:
        run(items)
    return time.perf_counter() - start


def measure(
    bundle_dir: Path, datasets: Path, batch: int, cases: int, rounds: int
) -> dict[str, Any] | None:
    """Medians per item and the ratio for one bundle at one batch size; None without a check."""
    settings = Settings(precision="fp32", providers=[CPU], intra_op_threads=1)
    bundle = load_bundle(bundle_dir, settings)
    if bundle.domain is None:
        return None
    baseline = _task_only(bundle)
    samples = load_dev_samples(bundle.manifest.task_set, datasets, cases)
    items = [bundle.prepare(s.image, s.text) for s in samples]
    batches = [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]
    plain: list[float] = []
    added: list[float] = []  # served - plain, the same batch back to back
    for round_ in range(rounds + 1):  # round 0 warms caches and allocators
        for index, items_ in enumerate(batches):
            if (round_ + index) % 2:  # alternate which of the two runs first
                served_s = _seconds(bundle.run_batch, [items_])
                plain_s = _seconds(baseline.run_batch, [items_])
            else:
                plain_s = _seconds(baseline.run_batch, [items_])
                served_s = _seconds(bundle.run_batch, [items_])
            if round_:
                plain.append(plain_s)
                added.append(served_s - plain_s)
    graph_ms = statistics.median(plain) * 1000 / batch
    domain_ms = statistics.median(added) * 1000 / batch
    served_ms = graph_ms + domain_ms
    return {
        "bundle": bundle.name,
        "batch": batch,
        "items": len(batches) * batch,
        "scores_in_graph": bool(bundle.manifest.domain and bundle.manifest.domain.scores_in_graph),
        "graph_ms_per_item": round(graph_ms, 4),
        "served_ms_per_item": round(served_ms, 4),
        "domain_ms_per_item": round(domain_ms, 4),
        "domain_over_graph": round(domain_ms / graph_ms, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, default=Path("exported"))
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cases", type=int, default=64, help="dev cases per bundle")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    bundles = sorted(p.parent for p in args.exported.glob(f"*/{MANIFEST_FILE}"))
    for bundle_dir in bundles:
        for batch in args.batch:
            row = measure(bundle_dir, args.datasets_root, batch, args.cases, args.rounds)
            if row is not None:
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
