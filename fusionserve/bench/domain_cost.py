"""What the domain check adds to serving: its scoring time over the graph's, per bundle.

    python -m fusionserve.bench.domain_cost [--exported exported]
        [--datasets-root ../shared/datasets] [--batch 1 8]

Each bundle with a domain check is loaded as served (`app.bundle_loader.load_bundle`, fp32,
one intra-op thread) and its task set's dev cases are prepared as served. Per round and batch
size, the same batches go through the graph (`OnnxModel.run_batch`, the session run and the
per-item split) and then through the domain scoring serving adds to it
(`app.loaded_bundle.add_domain_scores`); rounds alternate so machine noise hits both alike.
Printed per bundle and batch size: median ms per item of each and their ratio (the issue's
budget: at most 0.05).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from app.bundle_loader import load_bundle
from app.contract.manifest import MANIFEST_FILE
from app.contract.session import CPU
from app.loaded_bundle import LoadedBundle, add_domain_scores
from app.settings import Settings
from fusionserve.bench.samples import load_dev_samples

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def _round(bundle: LoadedBundle, batches: list[list[Any]]) -> tuple[float, float]:
    """(graph seconds, domain seconds) over every batch once."""
    assert bundle.domain is not None
    graph = domain = 0.0
    for items in batches:
        start = time.perf_counter()
        outputs = bundle.onnx.run_batch(items)
        middle = time.perf_counter()
        add_domain_scores(bundle.domain, outputs)
        domain += time.perf_counter() - middle
        graph += middle - start
    return graph, domain


def measure(
    bundle_dir: Path, datasets: Path, batch: int, cases: int, rounds: int
) -> dict[str, Any] | None:
    """Medians per item and the ratio for one bundle at one batch size; None without a check."""
    settings = Settings(precision="fp32", providers=[CPU], intra_op_threads=1)
    bundle = load_bundle(bundle_dir, settings)
    if bundle.domain is None:
        return None
    samples = load_dev_samples(bundle.manifest.task_set, datasets, cases)
    items = [bundle.prepare(s.image, s.text) for s in samples]
    batches = [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]
    _round(bundle, batches)  # warm caches and allocators
    graph, domain = zip(*(_round(bundle, batches) for _ in range(rounds)), strict=True)
    per_item = 1000 / (len(batches) * batch)
    graph_ms, domain_ms = statistics.median(graph) * per_item, statistics.median(domain) * per_item
    return {
        "bundle": bundle.name,
        "batch": batch,
        "items": len(batches) * batch,
        "graph_ms_per_item": round(graph_ms, 4),
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
