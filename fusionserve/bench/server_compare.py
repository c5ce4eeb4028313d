"""Today's server code (`--server-rev`) beside the new one on the same bundle, from one run:
issue 26's targets, the latency table at each closed-loop level and open loop, and where each
request's CPU went (the profiled pass).

Every target is a ratio of numbers measured in the same run, so a shared machine's load moves
both sides together; the served CPU is divided by the in-process pipeline's CPU per item for
the same bundle, in the paired rounds where they ran (`fusionserve.bench.paired`), else from
passes minutes apart.
"""

from __future__ import annotations

from fusionserve.bench.loadgen import LoadResult
from fusionserve.bench.paired import PairedThroughput
from fusionserve.bench.queue_floor import fifo_sojourn_ms
from fusionserve.bench.suite import OLD_SERVER_LABEL, BenchResults, ServedRun, Variant
from fusionserve.bench.target import Target, fmt

CPU_RATIO_GOAL = 1.2
TAIL_GOAL = 2.0
OPEN_LOOP_GOAL = 3.0
SPEEDUP_GOAL = 1.3


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _cpu_ratio(variant: Variant, high: int) -> float | None:
    served = variant.served.level(high).server_cpu_ms_per_request
    return _ratio(served, variant.ceiling.cpu_ms_per_item)


def _c1_p50(run: ServedRun) -> float:
    """p50 at the lowest closed-loop concurrency (c=1): what the open-loop tail is set against."""
    return run.level(min(level.concurrency for level in run.levels)).p50


def _open_tail(run: ServedRun) -> float | None:
    return None if run.open_loop is None else _ratio(run.open_loop.p99, _c1_p50(run))


def open_tail_floor(run: ServedRun, load: float, servers: int = 1) -> float | None:
    """The least open-loop p99 ÷ c=1 p50 an ideal FIFO server reaches at `load` × this run's
    max rate (`queue_floor`): with `servers` = 1, any server (one request at a time in 1 / max
    rate); with the run's concurrent runs, a server that runs that many at once, each in
    `servers` / max rate."""
    if run.open_loop is None or not run.levels or not run.max_rate or not 0 < load < 1:
        return None
    service = servers * 1000.0 / run.max_rate
    (p99,) = fifo_sojourn_ms(load, service, (0.99,), servers=servers)
    return _ratio(p99, _c1_p50(run))


def _floor_note(run: ServedRun, load: float) -> str:
    """The floors printed beside the open-loop measurement."""
    one = f"floor of an ideal FIFO server at this max rate: {fmt(open_tail_floor(run, load))}×"
    if run.concurrent_runs <= 1:
        return one
    runs = run.concurrent_runs
    floor = fmt(open_tail_floor(run, load, runs))
    return f"{one}; modelled as {runs} runs at once, each in {runs} / max rate: {floor}×"


def server_targets(results: BenchResults) -> list[Target]:
    """Issue 26's four targets for the new server (student fp32)."""
    high = max(results.config.requests)
    new = results.variants[0]
    old = results.variant(OLD_SERVER_LABEL)
    top = new.served.level(high)
    tail, open_tail = _ratio(top.p99, top.p50), _open_tail(new.served)
    out = [
        _cpu_target(results, new, high),
        Target(
            f"p99 ÷ p50 at c={high}, closed loop",
            f"≤ {TAIL_GOAL:g}×",
            f"{fmt(tail)}× ({fmt(top.p99, 1)} vs {fmt(top.p50, 1)} ms)",
            None if tail is None else tail <= TAIL_GOAL,
        ),
        Target(
            f"p99 at {results.config.open_loop_fraction:.0%} of max rate, open loop, ÷ c=1 p50",
            f"≤ {OPEN_LOOP_GOAL:g}×",
            f"{fmt(open_tail)}× ({_floor_note(new.served, results.config.open_loop_fraction)})",
            None if open_tail is None else open_tail <= OPEN_LOOP_GOAL,
        ),
    ]
    if old is not None:
        out.append(_speedup_target(results, top.throughput, old.served.level(high).throughput))
    return out


def _cpu_target(results: BenchResults, new: Variant, high: int) -> Target:
    """Served CPU ÷ pipeline CPU: the paired rounds' median where they measured CPU, else the
    single measurement of each (passes minutes apart)."""
    top = new.served.level(high)
    cpu = _cpu_ratio(new, high)
    measured = (
        f"{fmt(cpu)}× ({fmt(top.server_cpu_ms_per_request)} vs "
        f"{fmt(new.ceiling.cpu_ms_per_item)} ms)"
    )
    holds = None if cpu is None else cpu <= CPU_RATIO_GOAL
    paired = results.paired
    median = None if paired is None else paired.median_cpu_ratio()
    if paired is not None and median is not None:
        ratios = paired.cpu_ratios()
        measured = (
            f"{fmt(median)}× (median of {len(ratios)} paired rounds, "
            f"{fmt(min(ratios))}–{fmt(max(ratios))}×; measured once each: {measured})"
        )
        failed = paired.new_failures
        if failed:  # CPU per request over failed requests is no serving cost
            measured += f"; {failed} failed requests"
        holds = median <= CPU_RATIO_GOAL and not failed
    return Target(
        f"served CPU per request ÷ in-process pipeline CPU per item, c={high}",
        f"≤ {CPU_RATIO_GOAL}×",
        measured,
        holds,
    )


def _speedup_target(results: BenchResults, new_rps: float, old_rps: float) -> Target:
    """Throughput against the server at --server-rev: the paired rounds' median where there
    are rounds (a round with failed requests fails the target: that rate was not sustained),
    else the single measurement of each."""
    high = max(results.config.requests)
    once = _ratio(new_rps, old_rps)
    paired = results.paired
    measured = f"{fmt(once)}× (measured once each)"
    holds = None if once is None else once >= SPEEDUP_GOAL
    if paired is not None and paired.median_ratio is not None:
        ratios, failed = paired.ratios, paired.new_failures + paired.old_failures
        measured = (
            f"{fmt(paired.median_ratio)}× (median of {len(ratios)} paired rounds, "
            f"{fmt(min(ratios))}–{fmt(max(ratios))}×; measured once each: {fmt(once)}×)"
            + (f"; {failed} failed requests" if failed else "")
        )
        holds = paired.median_ratio >= SPEEDUP_GOAL and not failed
    return Target(
        f"throughput c={high} vs the server at {results.config.server_rev}",
        f"≥ {SPEEDUP_GOAL}×",
        measured,
        holds,
    )


def paired_section(results: BenchResults) -> list[str]:
    """Each paired round's throughput, new and old (empty without paired rounds)."""
    paired = results.paired
    if paired is None or not paired.new_rps:
        return []
    lines = [
        f"## Paired throughput: this server vs `{results.config.server_rev}`, "
        f"c={paired.concurrency}",
        "",
        "Both servers up at once, serving the same bundle, driven in turn with "
        f"{paired.requests} requests each per round (after warm-up); even rounds drive this "
        "server first, odd rounds the old one, so the machine's drift falls on both sides. "
        f"Failed requests: this server {paired.new_failures}, old {paired.old_failures}.",
        "",
        "| round | order | this server req/s | old server req/s | new / old |"
        + (_CPU_HEADER if paired.pipeline_cpu_ms else ""),
        "|---|---|---|---|---|" + ("---|" * 5 if paired.pipeline_cpu_ms else ""),
    ]
    for index, (new, old) in enumerate(zip(paired.new_rps, paired.old_rps, strict=True)):
        order = "new, old" if index % 2 == 0 else "old, new"
        lines.append(
            f"| {index + 1} | {order} | {new:.1f} | {old:.1f} | {fmt(_ratio(new, old))}× |"
            + _cpu_cells(paired, index)
        )
    cpu_median = (
        f" | | | {fmt(paired.median_cpu_ratio())}× | {fmt(paired.median_cpu_ratio('old'))}× |"
        if paired.pipeline_cpu_ms
        else ""
    )
    lines.append(f"| median | | | | {fmt(paired.median_ratio)}× |{cpu_median}")
    if paired.pipeline_cpu_ms:
        lines += [
            "",
            "CPU: each server's process CPU over its drive per request, and the in-process "
            "pipeline (decode, tokenize, graph; this bench's process, the served batch size) "
            "run once per round between the two drives, CPU per item.",
        ]
    return [*lines, ""]


_CPU_HEADER = (
    " this server CPU ms/req | old server CPU ms/req | pipeline CPU ms/item |"
    " this ÷ pipeline | old ÷ pipeline |"
)


def _cpu_cells(paired: PairedThroughput, index: int) -> str:
    """The round's CPU columns ('' without a pipeline pass; n/a where a CPU was not read)."""
    if index >= len(paired.pipeline_cpu_ms):
        return ""
    new, old = paired.new_cpu_ms[index], paired.old_cpu_ms[index]
    pipeline = paired.pipeline_cpu_ms[index]
    return (
        f" {fmt(new)} | {fmt(old)} | {fmt(pipeline)} | {fmt(_ratio(new, pipeline))}× |"
        f" {fmt(_ratio(old, pipeline))}× |"
    )


def _latency_cells(load: LoadResult) -> str:
    return f"{load.throughput:.1f} | {load.p50:.1f} | {load.p95:.1f} | {load.p99:.1f}"


def latency_section(results: BenchResults) -> list[str]:
    """p50/p95/p99 per closed-loop level and open loop, for the served student variants."""
    lines = [
        "## Latency: closed loop at each concurrency, and open loop (Poisson)",
        "",
        f"Open loop: Poisson arrivals at {results.config.open_loop_fraction:.0%} of that "
        "server's max rate (its closed-loop throughput at the top concurrency), latency from "
        "each request's scheduled arrival; req/s there is the rate answered.",
        "",
        "| server | load | req/s | p50 ms | p95 ms | p99 ms | p99 ÷ p50 | server CPU ms/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in results.variants:
        if variant.label not in ("student fp32", "student int8", OLD_SERVER_LABEL):
            continue
        run = variant.served
        loads = [(f"closed c={lv.concurrency}", lv) for lv in run.levels]
        if run.open_loop is not None:
            loads.append((f"open {fmt(run.open_loop_rate, 0)}/s offered", run.open_loop))
        for name, load in loads:
            lines.append(
                f"| {variant.label} | {name} | {_latency_cells(load)} | "
                f"{fmt(_ratio(load.p99, load.p50))} | {fmt(load.server_cpu_ms_per_request)} |"
            )
    return [*lines, ""]


def server_section(results: BenchResults) -> list[str]:
    """Old and new server side by side (empty without --server-rev)."""
    old = results.variant(OLD_SERVER_LABEL)
    if old is None:
        return []
    new = results.variants[0]
    high = max(results.config.requests)
    rows: list[tuple[str, float | None, float | None]] = [
        (f"req/s c={high}", old.served.level(high).throughput, new.served.level(high).throughput),
        (
            f"server CPU ms/request c={high}",
            old.served.level(high).server_cpu_ms_per_request,
            new.served.level(high).server_cpu_ms_per_request,
        ),
        (
            "÷ in-process pipeline CPU ms/item",
            _cpu_ratio(old, high),
            _cpu_ratio(new, high),
        ),
    ]
    for level in sorted(results.config.requests):
        o, n = old.served.level(level), new.served.level(level)
        rows += [(f"p50 ms c={level}", o.p50, n.p50), (f"p99 ms c={level}", o.p99, n.p99)]
    o_top, n_top = old.served.level(high), new.served.level(high)
    rows.append((f"p99 ÷ p50 c={high}", _ratio(o_top.p99, o_top.p50), _ratio(n_top.p99, n_top.p50)))
    if old.served.open_loop is not None and new.served.open_loop is not None:
        rows += [
            ("open loop p50 ms", old.served.open_loop.p50, new.served.open_loop.p50),
            ("open loop p99 ms", old.served.open_loop.p99, new.served.open_loop.p99),
            ("open loop p99 ÷ c=1 p50", _open_tail(old.served), _open_tail(new.served)),
        ]
    lines = [
        f"## Server: `{results.config.server_rev}` (today's) vs this commit, same bundle and run",
        "",
        f"Both serve `{new.bundle}` fp32 from the same folder; the in-process pipeline CPU per "
        f"item is {fmt(new.ceiling.cpu_ms_per_item)} ms (measured once, this run).",
        *_overlay_note(results.config.server_rev_overlay),
        "",
        f"| measure | server at {results.config.server_rev} | this server | new / old |",
        "|---|---|---|---|",
    ]
    for name, before, after in rows:
        lines.append(f"| {name} | {fmt(before)} | {fmt(after)} | {fmt(_ratio(after, before))}× |")
    return [*lines, ""]


def stages_section(results: BenchResults) -> list[str]:
    """Where each request's CPU went at the top concurrency (profiled pass), old and new."""
    runs = [v.served for v in results.variants if v.served.stages]
    if not runs:
        return []
    high = max(results.config.requests)
    cells = [
        {r.stage: f"{100 * r.share:.1f} | {fmt(r.cpu_ms_per_request)}" for r in run.stages or []}
        for run in runs
    ]
    lines = [
        f"## Per-stage CPU per request (c={high}, py-spy, one more pass after the measured ones)",
        "",
        "Share of the sampled thread-time (py-spy samples running or runnable threads only: a "
        "thread at a blocking call is being woken, a hand-off); CPU ms per request is each "
        "stage's share times the process CPU per request of that pass. Flame graphs: "
        f"`{results.config.stages_dir}/*.svg`.",
        "",
        *_table("stage", ("%", "CPU ms/req"), runs, cells),
    ]
    return [*lines, "", *threads_section(results)]


def threads_section(results: BenchResults) -> list[str]:
    """The same pass's CPU per request by thread role, as the kernel counted it."""
    runs = [v.served for v in results.variants if v.served.threads]
    if not runs:
        return []
    cells = [
        {r.role: f"{r.threads} | {r.cpu_ms_per_request:.2f}" for r in run.threads or []}
        for run in runs
    ]
    lines = [
        "CPU per request by thread over the same pass, from /proc/PID/task (user + system time "
        "the kernel gave each thread; py-spy's samples above also count a thread that is "
        "runnable but waiting for a core or the GIL):",
        "",
        *_table("thread role", ("threads", "CPU ms/req"), runs, cells),
    ]
    totals = []
    for run in runs:
        rows = run.threads or []
        totals.append(
            f"{sum(r.threads for r in rows)} | {sum(r.cpu_ms_per_request for r in rows):.2f}"
        )
    lines.append(f"| all threads | {' | '.join(totals)} |")
    return [*lines, ""]


def _table(
    first: str, columns: tuple[str, str], runs: list[ServedRun], cells: list[dict[str, str]]
) -> list[str]:
    """A table with two columns per run and one row per key any run has (in first-seen order);
    `cells[i][key]` holds run i's two cells, dashes where it has none."""
    header = " | ".join(f"{run.label} {columns[0]} | {run.label} {columns[1]}" for run in runs)
    keys = list(dict.fromkeys(key for by_key in cells for key in by_key))
    rows = [f"| {key} | {' | '.join(c.get(key, '— | —') for c in cells)} |" for key in keys]
    return [f"| {first} | {header} |", "|---|" + "---|---|" * len(runs), *rows]


def _overlay_note(paths: tuple[str, ...]) -> list[str]:
    if not paths:
        return []
    names = ", ".join(f"`{p}`" for p in paths)
    return [
        f"The old server reads the bundle through this commit's {names} (the bundle's format "
        "is newer than its revision); everything else, the whole HTTP path included, is its own."
    ]
