"""Dynamic batching for one model: a bounded queue, one loop, one inference thread.

The loop, in words: wait for an item; wait until the batch is full (max_batch_size items) or
max_delay has passed since the batch could have started — since its oldest item was queued, or
since the model became free if it was busy then (0 = take what is queued now) — but only while
more items are known to be on their way (announced with `expecting()` while they are
preprocessed), so a lone request never waits for batch-mates that are not coming. That is the
pipelining: items preprocessed while the model runs are queued for the next batch, and items
still being preprocessed when it finishes may join it within max_delay. Drop items whose caller
left or whose deadline passed (504, never run); run the batch in the model's own thread so the
event loop stays free; hand each output to its own caller. If a batched run raises, its items
are retried one by one so a bad item fails alone.

The run guard (`app.run_guard`): a run longer than its deadline is a stall — its items and the
queued ones are answered 503 `model_stalled`, new ones are refused and the batcher is not
available until the run returns (it cannot be interrupted; the thread is the session's). An
item whose outputs are NaN or infinite is answered 500 `non_finite_output`. Failed runs in a row
are counted; at the guard's limit `on_unhealthy` is called once (the registry reloads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.errors import (
    DeadlineExceeded,
    InferenceFailed,
    ModelNotReady,
    ModelStalled,
    NonFiniteOutput,
    QueueFull,
)
from app.hooks import ServingHooks
from app.run_guard import RunGuard

logger = logging.getLogger("fusionserve.batcher")

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class BatchOutcome(Generic[Out]):
    """One item's output and how its time was spent."""

    output: Out
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass
class _Pending(Generic[In, Out]):
    inputs: In
    deadline: float  # time.monotonic()
    future: asyncio.Future[BatchOutcome[Out]]
    enqueued: float = field(default_factory=time.monotonic)


class _Stalled(Exception):
    """The run passed its deadline; its items were answered already."""


class DynamicBatcher(Generic[In, Out]):
    """Collects items from many requests into batches for `run_batch` (a blocking function)."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch_size: int,
        max_delay_s: float,
        queue_size: int,
        hooks: ServingHooks | None = None,
        guard: RunGuard | None = None,
        check_output: Callable[[Out], str | None] | None = None,
    ) -> None:
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.queue_size = queue_size
        self._run_batch = run_batch
        self._hooks = hooks or ServingHooks()
        self._queue: deque[_Pending[In, Out]] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._incoming = 0  # items being preprocessed for this model, not yet queued
        self._free_since = 0.0  # time.monotonic() when the last batch's run ended
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.failure: str | None = None  # why the loop died, if it did (shown by readiness)
        self.guard = guard or RunGuard()
        self._check_output = check_output  # names an item's bad outputs (NaN/inf), else None
        self.stalled: str | None = None  # why runs are refused now: a run passed its deadline
        self.stalled_since: float | None = None  # time.monotonic() of the stall's detection
        self._failures = 0  # failed runs in a row
        self._unhealthy_reported = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    @property
    def available(self) -> bool:
        """Running and not stalled: what model readiness reads."""
        return self.running and self.stalled is None

    @property
    def depth(self) -> int:
        return len(self._queue)

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce an item that will be submitted soon (wrap its preprocessing)."""
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1
            self._wakeup.set()

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"inference-{self.name}")
        self._task = asyncio.create_task(self._loop(), name=f"batcher-{self.name}")
        self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """A loop that ended without stop() is dead: say why, and fail what nobody will run."""
        if self._stopping:
            return
        exc = None if task.cancelled() else task.exception()
        self.failure = f"batcher loop died: {type(exc).__name__ if exc else 'cancelled'}"
        logger.error(
            "batcher %s: %s; the model is not ready", self.name, self.failure, exc_info=exc
        )
        while self._queue:
            self._fail(self._queue.popleft(), ModelNotReady(f"model {self.name}: {self.failure}"))

    async def stop(self) -> None:
        """Stop accepting items, finish the queued ones, then end the loop and its thread. A
        stalled run is not waited for (it may never return): its loop is cancelled and its
        thread abandoned."""
        self._stopping = True
        self._wakeup.set()
        stalled = self.stalled is not None
        if self._task is not None:
            if stalled:
                self._task.cancel()
            # a loop that died already said why (_loop_ended); stopping must still succeed
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=not stalled)

    async def retire(self, wait_s: float = 60.0) -> None:
        """stop(), once no item is still being preprocessed for this batcher: after a hot
        swap, items prepared by this version's tokenizer and preprocessing must run on this
        version's graph, so the old batcher takes them before it drains."""
        end = time.monotonic() + wait_s
        while self._incoming > 0 and time.monotonic() < end:
            await asyncio.sleep(0.005)
        await self.stop()

    async def submit(self, inputs: In, deadline: float) -> BatchOutcome[Out]:
        """Queue one item and wait for its own output (raises the item's ServiceError)."""
        if self.stalled is not None:
            raise ModelStalled(f"model {self.name} is stalled: {self.stalled}")
        if not self.running:
            raise ModelNotReady(f"model {self.name} is not accepting requests")
        if len(self._queue) >= self.queue_size:
            self._hooks.item_rejected(self.name, "queue_full")
            raise QueueFull(
                f"model {self.name} has {len(self._queue)} items queued; retry later",
                {"Retry-After": "1"},
            )
        if time.monotonic() >= deadline:
            self._hooks.item_rejected(self.name, "deadline_exceeded")
            raise DeadlineExceeded("the request deadline passed before inference")
        future: asyncio.Future[BatchOutcome[Out]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, deadline, future))
        self._hooks.queue_depth(self.name, len(self._queue))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                return  # stopping and nothing left
            try:
                live = self._drop_dead(batch)
                if live:
                    await self._run(live)
            except Exception:  # the loop must outlive any one batch
                logger.exception("batcher %s: unexpected error; failing its batch", self.name)
                for item in batch:
                    self._fail(item, InferenceFailed("inference failed"))
            finally:
                self._free_since = time.monotonic()

    async def _wait(self, timeout: float | None) -> None:
        self._wakeup.clear()
        if timeout is None:
            await self._wakeup.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()

    async def _next_batch(self) -> list[_Pending[In, Out]]:
        while not self._queue:
            if self._stopping:
                return []
            await self._wait(None)
        if self.max_delay_s > 0:
            close_at = max(self._queue[0].enqueued, self._free_since) + self.max_delay_s
            while (
                len(self._queue) < self.max_batch_size and self._incoming > 0 and not self._stopping
            ):
                remaining = close_at - time.monotonic()
                if remaining <= 0:
                    break
                await self._wait(remaining)
        size = min(len(self._queue), self.max_batch_size)
        batch = [self._queue.popleft() for _ in range(size)]
        self._hooks.queue_depth(self.name, len(self._queue))
        return batch

    def _drop_dead(self, batch: list[_Pending[In, Out]]) -> list[_Pending[In, Out]]:
        """Skip items whose caller went away; answer expired ones 504 without running them."""
        now = time.monotonic()
        live = []
        for item in batch:
            if item.future.done():
                continue
            if now >= item.deadline:
                self._hooks.item_rejected(self.name, "deadline_exceeded")
                self._fail(item, DeadlineExceeded("the request deadline passed in the queue"))
            else:
                live.append(item)
        return live

    async def _run(self, batch: list[_Pending[In, Out]]) -> None:
        start = time.monotonic()
        try:
            outputs = await self._execute(batch)
            if len(outputs) != len(batch):
                raise RuntimeError(f"{len(outputs)} outputs for {len(batch)} items")
        except _Stalled:
            return
        except Exception as exc:
            elapsed = time.monotonic() - start
            self._hooks.batch_done(self.name, len(batch), elapsed, False)
            self._ran(False, "exception", type(exc).__name__)
            if len(batch) == 1:
                logger.warning("batcher %s: item failed: %s", self.name, type(exc).__name__)
                self._fail(batch[0], InferenceFailed("the model failed on this input"))
                return
            logger.warning("batcher %s: batch of %d failed; retrying singly", self.name, len(batch))
            for item in batch:
                if not item.future.done():
                    await self._run([item])
            return
        elapsed = time.monotonic() - start
        self._hooks.batch_done(self.name, len(batch), elapsed, True)
        if (slow_s := self.guard.slow_s) is not None and elapsed > slow_s:
            self._hooks.model_fault(self.name, "slow")
        bad = self._answer(batch, outputs, start, elapsed)
        self._ran(not bad, "non_finite", "NaN or infinite outputs")

    def _answer(
        self, batch: list[_Pending[In, Out]], outputs: Sequence[Out], start: float, elapsed: float
    ) -> int:
        """Hand each item its output; an item with NaN/inf outputs gets an error instead.
        Returns how many items had such outputs."""
        bad = 0
        for item, output in zip(batch, outputs, strict=True):
            problem = self._check_output(output) if self._check_output is not None else None
            if problem is not None:
                bad += 1
                self._fail(item, NonFiniteOutput(f"the model computed NaN or inf for {problem}"))
            elif not item.future.done():
                item.future.set_result(
                    BatchOutcome(output, start - item.enqueued, elapsed, len(batch))
                )
        if bad:
            logger.warning("batcher %s: %d items with NaN/inf outputs", self.name, bad)
        return bad

    async def _execute(self, batch: list[_Pending[In, Out]]) -> Sequence[Out]:
        """Run the batch in the model's thread under the guard's deadline. On a stall the items
        are answered at once and this waits for the run to return (the model's one thread is
        busy until then), then raises _Stalled."""
        loop = asyncio.get_running_loop()
        run = loop.run_in_executor(self._executor, self._run_batch, [i.inputs for i in batch])
        timeout = self.guard.timeout_s
        if timeout is None:
            return await run
        done, _ = await asyncio.wait({run}, timeout=timeout)
        if done:
            return run.result()
        self._stall(batch, timeout)
        with contextlib.suppress(Exception):
            await run
        waited = time.monotonic() - (self.stalled_since or time.monotonic())
        logger.warning("batcher %s: the stalled run returned after %.1fs more", self.name, waited)
        self.stalled = self.stalled_since = None
        raise _Stalled

    def _stall(self, batch: list[_Pending[In, Out]], timeout: float) -> None:
        self.stalled = f"a model run gave no answer within {timeout:g}s (RUN_TIMEOUT_S)"
        self.stalled_since = time.monotonic()
        logger.error("batcher %s: %s; not ready until it returns", self.name, self.stalled)
        self._hooks.model_fault(self.name, "stall")
        self._hooks.batch_done(self.name, len(batch), timeout, False)
        error = ModelStalled(f"model {self.name} is stalled: {self.stalled}")
        for item in batch:
            self._fail(item, error)
        while self._queue:
            self._fail(self._queue.popleft(), error)
        self._hooks.queue_depth(self.name, 0)

    def _ran(self, ok: bool, kind: str, cause: str) -> None:
        """Count runs that failed in a row; at the guard's limit, report once."""
        if ok:
            self._failures = 0
            return
        self._hooks.model_fault(self.name, kind)
        self._failures += 1
        limit = self.guard.max_failures
        if limit and self._failures >= limit and not self._unhealthy_reported:
            self._unhealthy_reported = True
            reason = f"{self._failures} failed runs in a row (last: {cause})"
            logger.error("batcher %s: %s", self.name, reason)
            self.guard.on_unhealthy(reason)

    @staticmethod
    def _fail(item: _Pending[In, Out], exc: Exception) -> None:
        if not item.future.done():
            item.future.set_exception(exc)
