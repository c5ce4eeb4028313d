"""How much cheaper each student is than its teacher: the bundles' graphs on real dev inputs.

    python -m fusionserve.bench.student_cost [--exported exported]
        [--datasets-root ../shared/datasets] [--cases 32] [--rounds 7] [--sessions 2]

For each task set, both fp32 bundles are loaded as the service loads them
(`app.bundle_loader.load_bundle`, one intra-op thread) and run at batch 1 over the same dev
cases, each prepared and batched exactly as served (the bundle's image size, tokenizer, and
padding: to the longest text rounded up to 16 for a bundle with a dynamic sequence axis, the
full length otherwise). Rounds alternate between the two graphs so machine noise hits both
alike; the ratio of medians is printed.

Each graph is opened `--sessions` times (default 2) in mirrored order, so that no one session's
luck sets a run's ratio (`fusionserve.bench.session_order`); rounds take the sessions in turn,
and a role's time is the mean of its sessions' medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from app.bundle_loader import load_bundle
from app.contract.session import CPU
from app.settings import Settings
from fusionserve.bench.samples import load_dev_samples
from fusionserve.bench.session_order import mirrored

PAIRS = {
    "medpix": ("medpix-student", "medpix-teacher"),
    "wound": ("wound-student", "wound-teacher"),
}
DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


class Graph:
    """One bundle loaded as served (fp32, one thread) and its cases, prepared as served."""

    def __init__(self, bundle_dir: Path, cases: list[tuple[bytes, str]]) -> None:
        settings = Settings(precision="fp32", providers=[CPU], intra_op_threads=1)
        self.bundle = load_bundle(bundle_dir, settings)
        self.items = [self.bundle.prepare(image, text) for image, text in cases]
        self.parameters = self.bundle.manifest.parameter_count

    def round_ms(self) -> float:
        """Mean ms per case over one pass through every case."""
        start = time.perf_counter()
        for item in self.items:
            self.bundle.run_batch([item])
        return (time.perf_counter() - start) * 1000 / len(self.items)


def _graphs(
    exported: Path, task_set: str, inputs: list[tuple[bytes, str]], sessions: int
) -> dict[str, list[Graph]]:
    """role → `sessions` loaded Graphs, opened in mirrored order
    (`fusionserve.bench.session_order`)."""
    names = dict(zip(("student", "teacher"), PAIRS[task_set], strict=True))
    graphs: dict[str, list[Graph]] = {"student": [], "teacher": []}
    for opens_student in mirrored(sessions):
        role = "student" if opens_student else "teacher"
        graphs[role].append(Graph(exported / names[role], inputs))
    return graphs


def compare(
    exported: Path, datasets: Path, task_set: str, cases: int, rounds: int, sessions: int = 2
) -> dict[str, Any]:
    samples = load_dev_samples(task_set, datasets, cases)
    inputs = [(s.image, s.text) for s in samples]
    graphs = _graphs(exported, task_set, inputs, sessions)
    student, teacher = graphs["student"][0], graphs["teacher"][0]
    times: dict[str, list[list[float]]] = {role: [[] for _ in range(sessions)] for role in graphs}
    for index in range(rounds * sessions):  # every session of each role gets `rounds` rounds
        session = index % sessions
        roles = ("student", "teacher") if index // sessions % 2 == 0 else ("teacher", "student")
        for role in roles:  # which runs first alternates
            times[role][session].append(graphs[role][session].round_ms())
    medians = {
        role: statistics.fmean(statistics.median(values) for values in by_session)
        for role, by_session in times.items()
    }
    return {
        "task_set": task_set,
        "cases": len(inputs),
        "student_ms": round(medians["student"], 3),
        "teacher_ms": round(medians["teacher"], 3),
        "teacher_over_student": round(medians["teacher"] / medians["student"], 2),
        "sessions": sessions,
        "student_parameters": student.parameters,
        "teacher_parameters": teacher.parameters,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, default=Path("exported"))
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--cases", type=int, default=32, help="dev cases per task set")
    parser.add_argument(
        "--rounds", type=int, default=7, help="alternating rounds per session of each graph"
    )
    parser.add_argument("--sessions", type=int, default=2, help="sessions of each graph")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.sessions < 1:
        parser.error("--rounds and --sessions must be at least 1")
    for task_set in PAIRS:
        row = compare(
            args.exported, args.datasets_root, task_set, args.cases, args.rounds, args.sessions
        )
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
