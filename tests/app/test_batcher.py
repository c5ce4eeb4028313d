"""Dynamic batching semantics with a real onnxruntime session on the tiny bundle.

A gate in front of the real `run_batch` lets a test hold the inference thread, so queue states
are reached deterministically instead of by timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.batcher import BatchOutcome, DynamicBatcher
from app.contract.image import ImageLimits
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder
from app.errors import (
    DeadlineExceeded,
    InferenceFailed,
    ModelNotReady,
    ModelStalled,
    QueueFull,
)
from app.preprocess import InputSpec, PreparedInputs, prepare
from app.run_guard import RunGuard
from app.runtime import OnnxModel, load_onnx_model
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, tiny_settings

Outputs = dict[str, np.ndarray]
FAR = 60.0  # seconds: a deadline that never passes in these tests


class GatedRunner:
    """The real model's run_batch, behind a gate; records every batch it runs."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.batches: list[list[PreparedInputs]] = []

    def __call__(self, items: Sequence[PreparedInputs]) -> list[Outputs]:
        self.started.set()
        assert self.gate.wait(30), "test forgot to open the gate"
        self.batches.append(list(items))
        return self.model.run_batch(items)

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]


@pytest.fixture(scope="module")
def medpix(tiny_bundle_dir: Path) -> tuple[OnnxModel, InputSpec]:
    bundle = tiny_bundle_dir / "medpix-student"
    manifest = Manifest.load(bundle)
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, pre.max_text_length)
    spec = InputSpec.from_manifest(manifest, encoder, ImageLimits())
    return load_onnx_model(bundle, manifest, tiny_settings(tiny_bundle_dir)), spec


@pytest.fixture(scope="module")
def items(medpix: tuple[OnnxModel, InputSpec]) -> list[PreparedInputs]:
    """Twelve distinct real inputs: one real image, different texts."""
    _, spec = medpix
    image = MEDPIX_IMAGE.read_bytes()
    words = MEDPIX_TEXT.split()
    return [prepare(image, " ".join(words[: i + 1]), spec) for i in range(12)]


def _run(
    runner: GatedRunner,
    scenario: Callable[[DynamicBatcher[PreparedInputs, Outputs]], Awaitable[None]],
    *,
    max_batch_size: int = 8,
    max_delay_s: float = 0.002,
    queue_size: int = 64,
) -> None:
    async def main() -> None:
        batcher = DynamicBatcher(
            "medpix-student",
            runner,
            max_batch_size=max_batch_size,
            max_delay_s=max_delay_s,
            queue_size=queue_size,
        )
        batcher.start()
        try:
            await asyncio.wait_for(scenario(batcher), timeout=30)
        finally:
            runner.gate.set()
            await batcher.stop()

    asyncio.run(main())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.002)


async def _hold_first(
    runner: GatedRunner, batcher: DynamicBatcher[PreparedInputs, Outputs], item: PreparedInputs
) -> asyncio.Task[BatchOutcome[Outputs]]:
    """Submit one item and wait until the inference thread is blocked on it."""
    runner.gate.clear()
    runner.started.clear()
    task = asyncio.create_task(batcher.submit(item, time.monotonic() + FAR))
    await _until(runner.started.is_set)
    return task


async def _queue(
    batcher: DynamicBatcher[PreparedInputs, Outputs], items: Sequence[PreparedInputs]
) -> list[asyncio.Task[BatchOutcome[Outputs]]]:
    """Submit `items` behind a held run and wait until all of them are queued."""
    depth = batcher.depth
    tasks = [asyncio.create_task(batcher.submit(i, time.monotonic() + FAR)) for i in items]
    await _until(lambda: batcher.depth == depth + len(items))
    return tasks


def _expected(model: OnnxModel, item: PreparedInputs) -> Outputs:
    return model.run_batch([item])[0]


def test_size_trigger_closes_batch_before_delay(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        with batcher.expecting():  # one more item "in preprocessing": the batch would wait 25 s
            start = time.monotonic()
            outcomes = await asyncio.gather(
                *(batcher.submit(i, time.monotonic() + FAR) for i in items[:4])
            )
            assert time.monotonic() - start < 20  # closed by size, not by the delay
        assert [o.batch_size for o in outcomes] == [4, 4, 4, 4]

    _run(runner, scenario, max_batch_size=4, max_delay_s=25.0)
    assert runner.sizes == [4]


def test_delay_trigger_runs_a_partial_batch(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        with batcher.expecting():  # announced but never arrives: the delay closes the batch
            start = time.monotonic()
            outcomes = await asyncio.gather(
                *(batcher.submit(i, time.monotonic() + FAR) for i in items[:3])
            )
            assert time.monotonic() - start >= 0.05
        assert all(o.batch_size == 3 for o in outcomes)

    _run(runner, scenario, max_batch_size=32, max_delay_s=0.05)
    assert runner.sizes == [3]


def test_lone_item_does_not_wait_for_the_delay(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        start = time.monotonic()
        outcome = await batcher.submit(items[0], time.monotonic() + FAR)
        assert time.monotonic() - start < 20  # nothing else in flight: no 25 s wait
        assert outcome.batch_size == 1

    _run(runner, scenario, max_batch_size=32, max_delay_s=25.0)
    assert runner.sizes == [1]


def test_batch_waits_for_announced_item(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        async def late_arrival() -> BatchOutcome[Outputs]:
            with batcher.expecting():
                await asyncio.sleep(0.05)  # "preprocessing"
            return await batcher.submit(items[1], time.monotonic() + FAR)

        late = asyncio.create_task(late_arrival())
        await asyncio.sleep(0)
        first = await batcher.submit(items[0], time.monotonic() + FAR)
        assert first.batch_size == 2 and (await late).batch_size == 2

    _run(runner, scenario, max_batch_size=32, max_delay_s=10.0)
    assert runner.sizes == [2]


def test_item_preprocessed_while_the_model_runs_joins_the_next_batch(medpix, items) -> None:  # type: ignore[no-untyped-def]
    """Pipelining: the items queued during a long run wait for one still being preprocessed
    when the run ends, although the oldest of them has waited far longer than max_delay."""
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[0])
        queued = await _queue(batcher, items[1:4])

        async def still_preprocessing() -> BatchOutcome[Outputs]:
            with batcher.expecting():
                runner.gate.set()  # the model finishes while this item is being prepared
                await asyncio.sleep(0.1)
            return await batcher.submit(items[4], time.monotonic() + FAR)

        await asyncio.sleep(0.3)  # the queued items are now far older than max_delay
        late = asyncio.create_task(still_preprocessing())
        outcomes = await asyncio.gather(first, *queued, late)
        assert [o.batch_size for o in outcomes] == [1, 4, 4, 4, 4]

    _run(runner, scenario, max_batch_size=8, max_delay_s=0.25)
    assert runner.sizes == [1, 4]


def test_zero_delay_takes_what_is_queued_up_to_max(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[0])
        rest = [asyncio.create_task(batcher.submit(i, time.monotonic() + FAR)) for i in items[1:7]]
        await _until(lambda: batcher.depth == 6)
        runner.gate.set()
        await asyncio.gather(first, *rest)

    _run(runner, scenario, max_batch_size=4, max_delay_s=0.0)
    assert runner.sizes == [1, 4, 2]


def test_results_reach_their_own_callers(medpix, items) -> None:  # type: ignore[no-untyped-def]
    model = medpix[0]
    runner = GatedRunner(model)
    expected = [_expected(model, i) for i in items]

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[0])
        rest = [asyncio.create_task(batcher.submit(i, time.monotonic() + FAR)) for i in items[1:]]
        await _until(lambda: batcher.depth == len(items) - 1)
        runner.gate.set()
        outcomes = await asyncio.gather(first, *rest)
        for outcome, want in zip(outcomes, expected, strict=True):
            for name, value in want.items():
                np.testing.assert_allclose(outcome.output[name], value, rtol=1e-5, atol=1e-6)

    _run(runner, scenario, max_batch_size=5, max_delay_s=0.0)
    assert runner.sizes == [1, 5, 5, 1]
    assert len({tuple(o["probs_location"].round(6)) for o in expected}) > 1  # inputs differ


def test_failing_item_does_not_fail_its_batch_mates(medpix, items) -> None:  # type: ignore[no-untyped-def]
    model = medpix[0]
    runner = GatedRunner(model)
    bad_ids = items[1].input_ids.copy()
    bad_ids[1] = 10**7  # out of the embedding table: onnxruntime's Gather raises
    bad = PreparedInputs(items[1].pixel_values, bad_ids, items[1].attention_mask, 0, 0, False)
    batch = [items[0], bad, items[2], items[3]]

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[4])
        tasks = [asyncio.create_task(batcher.submit(i, time.monotonic() + FAR)) for i in batch]
        await _until(lambda: batcher.depth == 4)
        runner.gate.set()
        await first
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[1], InferenceFailed)
        for index in (0, 2, 3):
            outcome = results[index]
            assert isinstance(outcome, BatchOutcome)
            want = _expected(model, batch[index])["probs_modality"]
            np.testing.assert_allclose(outcome.output["probs_modality"], want, rtol=1e-5)
        assert batcher.running  # the loop survived
        again = await batcher.submit(items[5], time.monotonic() + FAR)
        assert again.batch_size == 1

    _run(runner, scenario, max_batch_size=8, max_delay_s=0.0)
    # held item; the batch of 4 (raised inside onnxruntime); its 4 items one by one; `again`.
    assert runner.sizes == [1, 4, 1, 1, 1, 1, 1]


def test_queue_full_is_rejected_with_retry_after(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[0])
        queued = await _queue(batcher, items[1:3])
        with pytest.raises(QueueFull) as excinfo:
            await batcher.submit(items[3], time.monotonic() + FAR)
        assert excinfo.value.status == 429 and "Retry-After" in excinfo.value.headers
        runner.gate.set()
        await asyncio.gather(first, *queued)

    _run(runner, scenario, max_batch_size=8, max_delay_s=0.0, queue_size=2)
    assert runner.sizes == [1, 2]


def test_expired_items_are_answered_504_without_running(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        with pytest.raises(DeadlineExceeded):  # already past at submit
            await batcher.submit(items[0], time.monotonic() - 1)
        first = await _hold_first(runner, batcher, items[1])
        short = asyncio.create_task(batcher.submit(items[2], time.monotonic() + 0.05))
        long = asyncio.create_task(batcher.submit(items[3], time.monotonic() + FAR))
        await _until(lambda: batcher.depth == 2)
        await asyncio.sleep(0.1)  # the short deadline passes while the thread is held
        runner.gate.set()
        await first
        with pytest.raises(DeadlineExceeded) as excinfo:
            await short
        assert excinfo.value.status == 504
        assert (await long).batch_size == 1

    _run(runner, scenario, max_batch_size=8, max_delay_s=0.0)
    ran = {id(item) for batch in runner.batches for item in batch}
    assert id(items[2]) not in ran and id(items[0]) not in ran
    assert runner.sizes == [1, 1]


def test_stop_finishes_queued_items_then_refuses(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def main() -> None:
        batcher = DynamicBatcher("m", runner, max_batch_size=8, max_delay_s=0.0, queue_size=16)
        batcher.start()
        first = await _hold_first(runner, batcher, items[0])
        queued = await _queue(batcher, items[1:4])
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.01)
        assert not batcher.running
        with pytest.raises(ModelNotReady):
            await batcher.submit(items[5], time.monotonic() + FAR)
        runner.gate.set()
        await stopping
        outcomes = await asyncio.gather(first, *queued)
        assert [o.batch_size for o in outcomes] == [1, 3, 3, 3]

    asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_event_loop_stays_free_during_inference(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = GatedRunner(medpix[0])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = await _hold_first(runner, batcher, items[0])
        ticks = 0
        for _ in range(5):  # the loop keeps running other coroutines while the thread is held
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 5 and not first.done()
        runner.gate.set()
        await first

    _run(runner, scenario)


class HeldRunner(GatedRunner):
    """Holds every run that contains an item of `held` until that run's event in `holds` is
    set (`release()` sets them all); other runs go through."""

    def __init__(self, model: OnnxModel, held: Sequence[PreparedInputs]) -> None:
        super().__init__(model)
        self.held_ids = {id(item) for item in held}
        self.holds: list[threading.Event] = []
        self._released = False
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[PreparedInputs]) -> list[Outputs]:
        if self.held_ids & {id(item) for item in items}:
            hold = threading.Event()
            with self._lock:
                self.holds.append(hold)
                if self._released:
                    hold.set()
            assert hold.wait(30), "test forgot to release"
        return super().__call__(items)

    def release(self) -> None:
        with self._lock:
            self._released = True
            for hold in self.holds:
                hold.set()


def _run_held(
    runner: HeldRunner,
    scenario: Callable[[DynamicBatcher[PreparedInputs, Outputs]], Awaitable[None]],
    **options: Any,
) -> None:
    async def main() -> None:
        batcher = DynamicBatcher(
            "medpix-student", runner, max_batch_size=8, max_delay_s=0.0, queue_size=64, **options
        )
        batcher.start()
        try:
            await asyncio.wait_for(scenario(batcher), timeout=30)
        finally:
            runner.release()
            await batcher.stop()

    asyncio.run(main())


def test_a_second_runner_answers_while_the_first_run_is_held(medpix, items) -> None:  # type: ignore[no-untyped-def]
    model = medpix[0]
    runner = HeldRunner(model, items[:1])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        held = asyncio.create_task(batcher.submit(items[0], time.monotonic() + FAR))
        await _until(lambda: len(runner.holds) == 1)
        outcomes = []
        for item in items[1:4]:  # one at a time: runs of one item, as long as the held run
            outcomes.append(await batcher.submit(item, time.monotonic() + FAR))
        assert not held.done()  # answered while the other run was still in progress
        for outcome, item in zip(outcomes, items[1:4], strict=True):
            want = _expected(model, item)["probs_location"]
            np.testing.assert_allclose(outcome.output["probs_location"], want, rtol=1e-5)
        runner.release()
        assert (await held).batch_size == 1

    _run_held(runner, scenario, concurrent_runs=2)
    assert runner.sizes == [1, 1, 1, 1]


def test_one_runner_holds_everything_behind_its_run(medpix, items) -> None:  # type: ignore[no-untyped-def]
    """The same scene with one runner: nothing is answered until the held run ends."""
    runner = HeldRunner(medpix[0], items[:1])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        held = asyncio.create_task(batcher.submit(items[0], time.monotonic() + FAR))
        await _until(lambda: len(runner.holds) == 1)
        queued = await _queue(batcher, items[1:4])
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in queued)
        runner.release()
        outcomes = await asyncio.gather(held, *queued)
        assert [o.batch_size for o in outcomes] == [1, 3, 3, 3]

    _run_held(runner, scenario, concurrent_runs=1)


def test_stalled_until_every_stalled_run_returns(medpix, items) -> None:  # type: ignore[no-untyped-def]
    runner = HeldRunner(medpix[0], items[:2])

    async def scenario(batcher: DynamicBatcher[PreparedInputs, Outputs]) -> None:
        first = asyncio.create_task(batcher.submit(items[0], time.monotonic() + FAR))
        await _until(lambda: len(runner.holds) == 1)
        second = asyncio.create_task(batcher.submit(items[1], time.monotonic() + FAR))
        await _until(lambda: len(runner.holds) == 2)  # both runners are held
        for task in (first, second):
            with pytest.raises(ModelStalled):
                await task
        assert batcher.stalled is not None and not batcher.available
        runner.holds[0].set()  # one stalled run returns; the other is still out
        await asyncio.sleep(0.3)
        assert batcher.stalled is not None
        runner.release()
        await _until(lambda: batcher.stalled is None)
        assert (await batcher.submit(items[2], time.monotonic() + FAR)).batch_size == 1

    _run_held(runner, scenario, concurrent_runs=2, guard=RunGuard(timeout_s=0.2))


def test_runs_and_batch_size_must_be_positive(medpix) -> None:  # type: ignore[no-untyped-def]
    """0 is the settings' `auto`: a batcher given it unresolved would take empty batches and
    end its threads, so it refuses at once."""
    for runs, size in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match="must be at least 1"):
            DynamicBatcher(
                "m",
                GatedRunner(medpix[0]),
                max_batch_size=size,
                max_delay_s=0.0,
                queue_size=1,
                concurrent_runs=runs,
            )


def test_one_of_two_threads_dying_fails_the_batcher(
    medpix, items, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """The first thread to ask for a batch dies: the batcher is no longer running (refuses
    with 503, says why), the other thread still ends at stop(), and stop() returns."""
    runner = GatedRunner(medpix[0])

    async def main() -> None:
        batcher: DynamicBatcher[PreparedInputs, Outputs] = DynamicBatcher(
            "m", runner, max_batch_size=8, max_delay_s=0.0, queue_size=16, concurrent_runs=2
        )
        take = batcher._next_batch
        died = threading.Event()

        def first_dies(free_since: float) -> list[Any]:
            if not died.is_set():
                died.set()
                raise RuntimeError("simulated bug in one inference thread")
            return take(free_since)

        batcher._next_batch = first_dies  # type: ignore[method-assign]
        batcher.start()
        await _until(lambda: batcher.failure is not None)
        assert batcher.failure == "batcher loop died: RuntimeError" and not batcher.running
        with pytest.raises(ModelNotReady):
            await batcher.submit(items[0], time.monotonic() + FAR)
        await asyncio.wait_for(batcher.stop(), 10)

    asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert runner.sizes == []
    assert "simulated bug" in caplog.text
