"""Self-reloads back off: a model that keeps failing reloads at a doubling, capped interval, not
once per K failed runs; a self-reload that fails is retried the same way until the bundle is
good again; a version that held for longer than the cap starts a new streak."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.contract.manifest import TOKENIZER_FILE
from app.main import create_app
from app.reload_backoff import ReloadBackoff
from app.settings import FAULTS_FLAG
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64, tiny_settings
from tests.app.live_server import live_server
from tests.app.observability.scrape import parse, total

MODEL = "medpix-student"
BASE_S, MAX_S = 0.2, 0.8


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_a_version_that_held_resets_them() -> None:
    clock = Clock()
    backoff = ReloadBackoff(1.0, 8.0, clock)
    backoff.ready(MODEL)
    clock.now += 3600  # served an hour, then failed
    delays = []
    for _ in range(7):
        delays.append(backoff.next_delay(MODEL))
        backoff.ready(MODEL)  # each reload loads; each version fails at once
        clock.now += 0.5
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.next_delay("wound-student") == 0.0  # per model
    clock.now += 8.5  # this version held longer than the cap
    assert backoff.next_delay(MODEL) == 0.0
    assert backoff.next_delay(MODEL) == 1.0  # a failed reload continues the streak


def test_no_backoff_when_switched_off_and_no_overflow() -> None:
    off = ReloadBackoff(0.0, 0.0, Clock())
    assert {off.next_delay(MODEL) for _ in range(5)} == {0.0}
    capped = ReloadBackoff(1.0, 60.0, Clock())
    assert [capped.next_delay(MODEL) for _ in range(2000)][-1] == 60.0


def eventually(check: Callable[[], bool], within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def _predict(base: str) -> int:
    body = {"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT, "model": MODEL}
    return httpx.post(f"{base}/predict", json=body, timeout=30).status_code


def _reloads(base: str) -> float:
    samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
    return total(samples, "fusionserve_model_faults_total", model=MODEL, kind="reload")


def _most_reloads(elapsed_s: float) -> int:
    """Reloads the schedule allows in `elapsed_s` (loads themselves taking no time)."""
    n, waited, delay = 1, 0.0, BASE_S
    while waited + delay <= elapsed_s:
        n, waited, delay = n + 1, waited + delay, min(MAX_S, 2 * delay)
    return n


def faulty_app(monkeypatch: pytest.MonkeyPatch, bundle_dir: Path, fault: str) -> FastAPI:
    """One model whose runs fail (`fault`), reloading after each failed run, backing off."""
    monkeypatch.setenv(FAULTS_FLAG, "1")
    settings = tiny_settings(
        bundle_dir, models=[MODEL], fault_injection=[f"{MODEL}={fault}"],
        max_consecutive_failures=1, reload_backoff_s=BASE_S, reload_backoff_max_s=MAX_S,
    )  # fmt: skip
    return create_app(settings)


@pytest.mark.slow
def test_a_model_failing_every_run_reloads_at_a_backed_off_pace(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_server(faulty_app(monkeypatch, tiny_bundle_dir, "raise")) as base:
        start = time.monotonic()
        statuses, reasons = set(), []
        while time.monotonic() - start < 3.0:
            statuses.add(_predict(base))
            reasons += httpx.get(f"{base}/health/ready", timeout=10).json().get("reasons", [])
        elapsed, reloads = time.monotonic() - start, _reloads(base)
    assert statuses <= {500, 503} and 500 in statuses
    assert 2 <= reloads <= _most_reloads(elapsed), (reloads, elapsed)
    assert any("next reload in" in r for r in reasons), reasons


@pytest.mark.slow
def test_a_failed_self_reload_is_retried_until_the_bundle_is_good(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good" / MODEL, tmp_path / "bad" / MODEL
    shutil.copytree(tiny_bundle_dir / MODEL, good)
    shutil.copytree(good, bad)
    with (bad / TOKENIZER_FILE).open("a", encoding="utf-8") as handle:
        handle.write(" ")  # its checksum fails
    root = tmp_path / "served"
    root.mkdir()
    (root / MODEL).symlink_to(good, target_is_directory=True)
    with live_server(faulty_app(monkeypatch, root, "raise:1")) as base:
        (root / MODEL).unlink()
        (root / MODEL).symlink_to(bad, target_is_directory=True)
        assert _predict(base) == 500  # the injected fault: the model reloads, from `bad`
        eventually(lambda: _reloads(base) >= 3)  # retried, backing off, the bundle still bad
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 503 and "next reload in" in str(ready.json()["reasons"])
        staging = root / f".{MODEL}.next"
        staging.symlink_to(good, target_is_directory=True)
        os.replace(staging, root / MODEL)
        # the next retry loads the good bundle by itself
        eventually(lambda: httpx.get(f"{base}/health/ready", timeout=10).status_code == 200)
        assert _predict(base) == 200
