"""Today's student against the same bundle as committed earlier (`--baseline-rev`), measured in
the same run: the speed targets that compare the two, and a side-by-side table."""

from __future__ import annotations

from fusionserve.bench.suite import BASELINE_LABEL, BenchResults
from fusionserve.bench.target import Target, fmt

MAX_BUNDLE_MB = 25.0


def _ratio(new: float, old: float) -> float | None:
    return new / old if old > 0 else None


def _high(results: BenchResults) -> int:
    return max(results.config.requests)


def baseline_targets(results: BenchResults) -> list[Target]:
    """int8 vs fp32 graph, bundle size; with a baseline, the student ceiling against the old
    bundle's. (Served CPU and tails are issue 26's targets: `server_compare`.)"""
    new = results.variants[0]
    out: list[Target] = []
    if (int8 := results.variant("student int8")) is not None:
        graph = _ratio(int8.ceiling.inference_items_per_s, new.ceiling.inference_items_per_s)
        out.append(
            Target(
                "int8 graph vs fp32 graph (items/s, graph alone)",
                "≥ 1.5×",
                f"{fmt(graph)}×",
                None if graph is None else graph >= 1.5,
            )
        )
    size = new.bundle_mb
    out.append(
        Target(
            "student bundle size (fp32 + int8 + tokenizer + manifest)",
            f"≤ {MAX_BUNDLE_MB:.0f} MB",
            f"{size:.1f} MB",
            size <= MAX_BUNDLE_MB,
        )
    )
    if (old := results.variant(BASELINE_LABEL)) is not None:
        fp32 = _ratio(new.ceiling.throughput, old.ceiling.throughput)
        int8_ratio = (
            None if int8 is None else _ratio(int8.ceiling.throughput, old.ceiling.throughput)
        )
        best = max((r for r in (fp32, int8_ratio) if r is not None), default=None)
        measured = f"fp32 {fmt(fp32)}×" + ("" if int8 is None else f", int8 {fmt(int8_ratio)}×")
        out.append(
            Target(
                f"student ceiling vs the bundle at {results.config.baseline_rev}",
                "≥ 2×",
                measured,
                None if best is None else best >= 2.0,
            )
        )
    return out


def baseline_section(results: BenchResults) -> list[str]:
    """Old and new side by side (empty without a baseline)."""
    old = results.variant(BASELINE_LABEL)
    if old is None:
        return []
    high = _high(results)
    new = [v for v in results.variants if v.label in ("student fp32", "student int8")]
    columns = [old, *new]

    def row(name: str, values: list[float | None], digits: int = 1) -> str:
        base = values[0]
        ratios = [
            fmt(_ratio(v, base) if v is not None and base else None) + "×" for v in values[1:]
        ]
        cells = " | ".join(fmt(v, digits) for v in values)
        return f"| {name} | {cells} | {' | '.join(ratios)} |"

    header = " | ".join(f"{v.label}" for v in columns)
    ratio_header = " | ".join(f"{v.label} / old" for v in new)
    lines = [
        f"## Old vs new student (same run; old = `{results.config.baseline_rev}`)",
        "",
        f"| measure | {header} | {ratio_header} |",
        "|---|" + "---|" * (len(columns) + len(new)),
        row("ceiling items/s", [v.ceiling.throughput for v in columns]),
        row("ceiling CPU ms per item", [v.ceiling.cpu_ms_per_item for v in columns], 2),
        row("graph alone items/s", [v.ceiling.inference_items_per_s for v in columns]),
        row("single-item p50 ms", [v.ceiling.single_p50 for v in columns], 2),
        row(f"served req/s c={high}", [v.served.level(high).throughput for v in columns]),
        row(
            f"served CPU ms/request c={high}",
            [v.served.level(high).server_cpu_ms_per_request for v in columns],
            2,
        ),
        row(f"served p50 ms c={high}", [v.served.level(high).p50 for v in columns]),
        row(f"served p99 ms c={high}", [v.served.level(high).p99 for v in columns]),
        row("bundle MB", [v.bundle_mb for v in columns]),
        "",
    ]
    return lines
