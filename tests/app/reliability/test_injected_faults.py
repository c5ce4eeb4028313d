"""Injected faults under concurrent load over real HTTP (both students, the fault in medpix's):
what good items get, that the service recovers, and that `fusionserve_model_faults_total` shows
it. wound-student answers 200 throughout every case."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import FAULTS_FLAG
from tests.app.helpers import tiny_settings
from tests.app.live_server import live_server
from tests.app.observability.scrape import parse
from tests.app.reliability.load import Answer, hammer

FAULTY, HEALTHY = "medpix-student", "wound-student"
CONCURRENCY = 8


@contextmanager
def faulty_server(
    monkeypatch: pytest.MonkeyPatch, bundle_dir: Path, fault: str, **overrides: Any
) -> Iterator[tuple[str, FastAPI]]:
    monkeypatch.setenv(FAULTS_FLAG, "1")
    settings = tiny_settings(
        bundle_dir,
        models=[FAULTY, HEALTHY],
        fault_injection=[f"{FAULTY}={fault}"],
        max_delay_ms=1.0,
        **overrides,
    )
    app = create_app(settings)
    with live_server(app) as base:
        yield base, app


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> float:
    """Seconds until `check` held (fails the test if it never does)."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within_s, "the condition never held"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def under_load(
    base: str, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> tuple[list[Answer], dict[str, float]]:
    """Run `scenario` (an admin client's checks) while clients ask both students; then the
    model's fault counters."""

    async def main() -> tuple[list[Answer], dict[str, float]]:
        stop = asyncio.Event()
        load = asyncio.create_task(hammer(base, (FAULTY, HEALTHY), CONCURRENCY, stop))
        async with httpx.AsyncClient(base_url=base, timeout=30) as admin:
            try:
                await scenario(admin)
            finally:
                stop.set()
            answers = await load
            samples = parse((await admin.get("/metrics")).text)
        faults = {
            dict(labels)["kind"]: value
            for (name, labels), value in samples.items()
            if name == "fusionserve_model_faults_total" and dict(labels)["model"] == FAULTY
        }
        return answers, faults

    return asyncio.run(asyncio.wait_for(main(), 90))


def summary(answers: list[Answer]) -> Counter[tuple[int, str]]:
    return Counter((a.status, a.code) for a in answers if a.model == FAULTY)


def recovery_s(answers: list[Answer]) -> float | None:
    """From the first failed answer to the first 200 sent after the last failed one; None when
    none was (a fault that keeps firing, 1 in 10, can fail the very last request)."""
    mine = sorted((a for a in answers if a.model == FAULTY), key=lambda a: a.sent)
    bad = [a for a in mine if a.status != 200]
    if not bad:
        return 0.0
    after = [a for a in mine if a.status == 200 and a.sent > bad[-1].sent]
    return after[0].sent - min(a.received for a in bad) if after else None


def check_healthy_model_and_probabilities(answers: list[Answer]) -> None:
    assert all(a.status == 200 for a in answers if a.model == HEALTHY)
    for a in answers:
        for probs in a.probabilities.values():
            assert all(math.isfinite(p) for p in probs.values())


def report(kind: str, answers: list[Answer], faults: dict[str, float]) -> None:
    seen = {k: v for k, v in faults.items() if v}
    recovery = recovery_s(answers)
    shown = "none after the last failure" if recovery is None else f"{recovery:.2f}s"
    print(f"\n{kind}: {dict(summary(answers))} recovery {shown} faults {seen}")


async def ready(admin: httpx.AsyncClient) -> bool:
    return (await admin.get("/health/ready")).status_code == 200


async def until_recovered(admin: httpx.AsyncClient) -> None:
    """Faults for a while (the fault's batches), a self-reload or more, then ready again."""
    await asyncio.sleep(1.0)
    await eventually(lambda: ready(admin))
    await asyncio.sleep(0.5)


@pytest.mark.parametrize(
    ("fault", "code", "kind", "batches"),
    [("raise", "inference_failed", "exception", 12), ("nan", "non_finite_output", "non_finite", 8)],
)
def test_failing_runs_fail_their_items_then_reload_and_recover(
    tiny_bundle_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    code: str,
    kind: str,
    batches: int,
) -> None:
    """Every run raises (or computes NaN) for the fault's batches: those items fail with the
    code, never with probabilities; 5 in a row make the model reload itself; then it serves."""
    spec = f"{fault}:{batches}"
    with faulty_server(monkeypatch, tiny_bundle_dir, spec, max_consecutive_failures=5) as (base, _):
        answers, faults = under_load(base, until_recovered)
    report(fault, answers, faults)
    assert set(summary(answers)) <= {(200, ""), (500, code), (503, "model_not_ready")}
    assert summary(answers)[(500, code)] > 0
    assert faults[kind] == batches and faults["reload"] >= 1
    check_healthy_model_and_probabilities(answers)
    recovery = recovery_s(answers)
    assert recovery is not None and recovery < 5


def test_raise_one_in_ten_fails_few_items_and_stays_ready(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with faulty_server(monkeypatch, tiny_bundle_dir, "raise_1_in_10") as (base, _):

        async def scenario(admin: httpx.AsyncClient) -> None:
            for _ in range(10):
                await asyncio.sleep(0.2)
                assert await ready(admin)

        answers, faults = under_load(base, scenario)
    report("raise_1_in_10", answers, faults)
    counts = summary(answers)
    assert set(counts) <= {(200, ""), (500, "inference_failed")}
    # a failed batch of several is retried singly: at most the 1 in 10 (batches of one) fail
    assert counts[(500, "inference_failed")] <= 0.2 * sum(counts.values())
    assert faults["exception"] >= 1 and faults["reload"] == 0
    check_healthy_model_and_probabilities(answers)


@pytest.mark.parametrize("runs", [1, 2])
def test_hang_stalls_the_model_fails_liveness_and_recovers_when_it_returns(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    """With two runs, the one hung run stalls the model although the other keeps running."""
    with faulty_server(
        monkeypatch,
        tiny_bundle_dir,
        "hang:1",
        run_timeout_s=0.5,
        stall_grace_s=0.5,
        concurrent_runs=runs,
    ) as (base, app):

        async def scenario(admin: httpx.AsyncClient) -> None:
            async def stalled_and_named() -> bool:
                body = (await admin.get("/health/ready")).json()
                return (body["models"][FAULTY]["reason"] or "").startswith("stalled: ")

            async def not_alive() -> bool:
                live = await admin.get("/health/live")
                return live.status_code == 503 and FAULTY in live.json()["reasons"][0]

            await eventually(stalled_and_named)
            assert (await admin.get("/health/ready")).json()["models"][HEALTHY]["ready"]
            await eventually(not_alive)
            assert (await admin.get("/v2/health/live")).status_code == 503
            app.state.service.registry.faults.release()  # the device comes back
            await eventually(lambda: ready(admin))
            assert (await admin.get("/health/live")).status_code == 200
            await asyncio.sleep(0.5)

        answers, faults = under_load(base, scenario)
    report("hang", answers, faults)
    assert set(summary(answers)) <= {(200, ""), (503, "model_stalled")}
    assert summary(answers)[(503, "model_stalled")] > 0
    assert faults["stall"] == 1
    check_healthy_model_and_probabilities(answers)


def test_slow_runs_answer_200_and_are_counted(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with faulty_server(monkeypatch, tiny_bundle_dir, "slow:2", run_timeout_s=3.0) as (base, _):

        async def scenario(admin: httpx.AsyncClient) -> None:
            await asyncio.sleep(4.5)
            assert await ready(admin)

        answers, faults = under_load(base, scenario)
    report("slow", answers, faults)
    assert set(summary(answers)) == {(200, "")}
    assert max(a.received - a.sent for a in answers if a.model == FAULTY) >= 2.0
    assert faults["slow"] == 2 and faults["stall"] == 0
    check_healthy_model_and_probabilities(answers)
