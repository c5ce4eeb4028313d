"""What the domain check adds to serving: the whole check's time over the graph's, per bundle.

    python -m fusionserve.bench.domain_cost [--exported exported]
        [--datasets-root ../shared/datasets] [--batch 1 8] [--cases 64] [--rounds 2]
        [--sessions 4]

Each bundle with a domain check is loaded as served (`app.bundle_loader.load_bundle`, fp32,
one intra-op thread) and its task set's dev cases are prepared as served. The baseline is the
same graph cut to the task outputs (onnx's `Extractor`: every node only the check needs is
gone: input statistics, the early-block pools, the scoring); against it runs what serving
runs (`LoadedBundle.run_batch`: the full graph, the per-item split, and numpy scoring for
bundles whose graph does not score). Each batch runs through both back to back, so the two
see the same machine: the added time is a median of those paired differences, robust to the
drifts of a shared machine that whole-round medians were not.

Sessions (`fusionserve.bench.session_order`): with one session of each graph, every run
carried one draw of a session's luck in full (runs of the same bundles read 5.2-6.7 %). So
`--sessions` fresh sessions of each graph are opened in mirrored order and warmed as served,
and each served session meets each cut one: one pairing per round, two sessions alternating
batch by batch as in a server that runs one graph (which runs first alternates per batch and
flips between a pairing's rounds; the first batch after each switch is not counted). The added
time is the mean over pairings of their median differences. Printed per bundle and batch size:
the baseline's median ms per item, the added ms per item, their sum, the ratio (the issue's
budget: at most 0.05) and each pairing's ratio (their spread: what one pairing alone can be
off by). Needs the `onnx` package (the train or dev extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.bundle_loader import load_bundle
from app.contract.graph import INPUT_NAMES, output_widths
from app.contract.manifest import MANIFEST_FILE, MODEL_FILE
from app.contract.session import CPU, open_session
from app.loaded_bundle import LoadedBundle
from app.preprocess import PreparedInputs
from app.runtime import OnnxModel, load_onnx_model, runtime_options
from app.settings import Settings
from app.warm_up import WARMUP_BATCH
from fusionserve.bench.samples import load_dev_samples
from fusionserve.bench.session_order import mirrored

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@contextmanager
def _task_only(bundle: LoadedBundle) -> Iterator[Callable[[], OnnxModel]]:
    """The bundle's fp32 graph cut to its task outputs (cut once) → a function that opens a
    fresh session of it as serving opens one."""
    import onnx  # the train/dev extra: not part of the serving install
    from onnx.utils import Extractor

    graph = onnx.load(str(bundle.bundle_dir / MODEL_FILE))
    outputs = list(output_widths(bundle.manifest))
    cut = Extractor(graph).extract_model(list(INPUT_NAMES), outputs)
    options = runtime_options(bundle.settings)
    with tempfile.TemporaryDirectory(prefix="fusionserve-cut-") as workdir:
        path = Path(workdir) / MODEL_FILE
        onnx.save(cut, str(path))
        dynamic_text = bundle.onnx.dynamic_text
        yield lambda: OnnxModel(
            open_session(path, options), outputs, "fp32", "task-only", dynamic_text
        )


def _served(bundle: LoadedBundle) -> LoadedBundle:
    """The bundle with a fresh session of its served graph, opened as the service opens it."""
    return dataclasses.replace(
        bundle, onnx=load_onnx_model(bundle.bundle_dir, bundle.manifest, bundle.settings)
    )


Run = Callable[[list[Any]], object]


def _sessions(
    bundle: LoadedBundle, count: int, items: list[PreparedInputs]
) -> tuple[list[Run], list[Run]]:
    """`count` cut and `count` served sessions, opened in mirrored order (cut, served, served,
    cut, ...: `fusionserve.bench.session_order`); each is warmed as `app.warm_up` warms a
    served one (one item alone, then a batch of `WARMUP_BATCH`)."""
    cut: list[Run] = []
    served: list[Run] = []
    with _task_only(bundle) as open_cut:
        for opens_cut in mirrored(count):
            run = open_cut().run_batch if opens_cut else _served(bundle).run_batch
            run(items[:1])
            run((items * WARMUP_BATCH)[:WARMUP_BATCH])
            (cut if opens_cut else served).append(run)
    return cut, served


def schedule(sessions: int, rounds: int, batches: int) -> Iterator[tuple[int, int, int, bool]]:
    """(served session, cut session, batch index, served first?) in run order: one pairing per
    round, `rounds` rounds per pairing; which runs first alternates batch by batch and flips
    between a pairing's rounds, so with an even `rounds` every pairing runs every batch both
    ways."""
    pairings = [(s, c) for s in range(sessions) for c in range(sessions)]
    for round_ in range(rounds * len(pairings)):
        s, c = pairings[round_ % len(pairings)]
        flip = round_ // len(pairings) % 2
        for index in range(batches):
            yield s, c, index, bool((index + flip) % 2)


def _seconds(run: Run, items: list[Any]) -> float:
    start = time.perf_counter()
    run(items)
    return time.perf_counter() - start


def measure(
    bundle_dir: Path, datasets: Path, batch: int, cases: int, rounds: int, sessions: int = 4
) -> dict[str, Any] | None:
    """Medians per item and the ratio for one bundle at one batch size; None without a check."""
    settings = Settings(precision="fp32", providers=[CPU], intra_op_threads=1)
    bundle = load_bundle(bundle_dir, settings)
    if bundle.domain is None:
        return None
    samples = load_dev_samples(bundle.manifest.task_set, datasets, cases)
    items = [bundle.prepare(s.image, s.text) for s in samples]
    batches = [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]
    if len(batches) < 2 or rounds < 1 or sessions < 1:
        raise ValueError("needs at least 2 batches of dev cases, 1 round and 1 session")
    cut, served = _sessions(bundle, sessions, items)
    plain: list[float] = []
    added: dict[tuple[int, int], list[float]] = {}  # (served, cut) session → served - cut
    for s, c, index, served_first in schedule(sessions, rounds, len(batches)):
        if served_first:
            served_s = _seconds(served[s], batches[index])
            plain_s = _seconds(cut[c], batches[index])
        else:
            plain_s = _seconds(cut[c], batches[index])
            served_s = _seconds(served[s], batches[index])
        if index:  # the first batch after a switch of sessions warms them
            plain.append(plain_s)
            added.setdefault((s, c), []).append(served_s - plain_s)
    graph_s = statistics.median(plain)
    by_pairing = [statistics.median(values) for values in added.values()]
    domain_s = statistics.fmean(by_pairing)
    return {
        "bundle": bundle.name,
        "batch": batch,
        "items": len(batches) * batch,
        "rounds_per_pairing": rounds,
        "sessions": sessions,
        "scores_in_graph": bool(bundle.manifest.domain and bundle.manifest.domain.scores_in_graph),
        "graph_ms_per_item": round(graph_s * 1000 / batch, 4),
        "served_ms_per_item": round((graph_s + domain_s) * 1000 / batch, 4),
        "domain_ms_per_item": round(domain_s * 1000 / batch, 4),
        "domain_over_graph": round(domain_s / graph_s, 4),
        "by_pairing": [round(d / graph_s, 4) for d in by_pairing],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, default=Path("exported"))
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cases", type=int, default=64, help="dev cases per bundle")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds per pairing of a served and a cut session"
    )
    parser.add_argument(
        "--sessions", type=int, default=4, help="fresh sessions of each graph (see above)"
    )
    args = parser.parse_args(argv)
    if args.cases // max(args.batch) < 2 or args.rounds < 1 or args.sessions < 1:
        parser.error("needs at least 2 batches of --cases, --rounds >= 1 and --sessions >= 1")
    bundles = sorted(p.parent for p in args.exported.glob(f"*/{MANIFEST_FILE}"))
    for bundle_dir in bundles:
        for batch in args.batch:
            row = measure(
                bundle_dir, args.datasets_root, batch, args.cases, args.rounds, args.sessions
            )
            if row is not None:
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
