"""Dynamic batching for one model: a bounded queue and `concurrent_runs` inference threads that
each form their own batches.

Items are queued from the event loop; each of the model's threads takes its next batch from
the queue itself (`app.batch_queue`: FIFO, closes a batch when full or max_delay after it could
have started, or at once when no item is being preprocessed for it), runs it, and hands the
outputs back to the event loop in one call per batch, where each caller gets its own. So the
model never waits for the event loop between runs, and the event loop wakes once per batch, not
once per step of forming it. With two or more concurrent runs (Triton's instance count, on one
shared session) a batch forms and runs while another runs: on a 2-core CPU the graph is the one
serial stage, and between the bursts of preprocessing a single run left a core idle (issue 26).

Items whose caller left are skipped and items whose deadline passed are answered 504,
never run. If a batched run raises, its items are retried one by one so a bad item fails alone.

The run guard (`app.run_guard`): a run longer than its deadline is a stall, seen by a watch on
the event loop — its items and the queued ones are answered 503 `model_stalled`, new ones are
refused and the batcher is not available until every stalled run returns (none can be
interrupted; a thread is the session's). An item whose outputs are NaN or infinite is answered 500
`non_finite_output`. Failed runs in a row are counted; at the guard's limit `on_unhealthy` is
called once (the registry reloads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.batch_queue import BatchQueue
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
WATCH_PERIODS = 20  # the stall watch looks this many times per run deadline (at most once a second)


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


@dataclass(eq=False)  # found and removed by identity: comparing batches compares arrays
class _Run(Generic[In, Out]):
    """A run in progress on an inference thread (read by the stall watch)."""

    batch: list[_Pending[In, Out]]
    start: float
    stalled_at: float | None = None  # time.monotonic() when the watch found it stalled


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
        concurrent_runs: int = 1,
    ) -> None:
        if concurrent_runs < 1:  # the queue checks max_batch_size
            raise ValueError(
                f"concurrent_runs must be at least 1, not {concurrent_runs} "
                "(resolve the settings' 0 = auto first)"
            )
        self.name = name
        self.concurrent_runs = concurrent_runs
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.queue_size = queue_size
        self._run_batch = run_batch
        self._hooks = hooks or ServingHooks()
        self._queue: BatchQueue[_Pending[In, Out]] = BatchQueue(max_batch_size, max_delay_s)
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended: asyncio.Future[None] | None = None  # done once every thread has left
        self._threads_left = 0  # inference threads still working (event loop only)
        self._watch: asyncio.Task[None] | None = None
        self._runs: list[_Run[In, Out]] = []  # in progress; guarded by _run_lock
        self._run_lock = threading.Lock()
        self._stalled: list[_Run[In, Out]] = []  # stalled runs not yet returned (event loop)
        self.failure: str | None = None  # why the loop died, if it did (shown by readiness)
        self.guard = guard or RunGuard()
        self._check_output = check_output  # names an item's bad outputs (NaN/inf), else None
        self.stalled: str | None = None  # why runs are refused now: a run passed its deadline
        self._failures = 0  # failed runs in a row
        self._unhealthy_reported = False

    @property
    def stalled_since(self) -> float | None:
        """When the oldest stalled run still out was found stalled (time.monotonic())."""
        return min((r.stalled_at for r in self._stalled if r.stalled_at is not None), default=None)

    @property
    def running(self) -> bool:
        return (
            self._ended is not None
            and not self._ended.done()
            and not self._stopping
            and self.failure is None
        )

    @property
    def available(self) -> bool:
        """Running and not stalled: what model readiness reads."""
        return self.running and self.stalled is None

    @property
    def depth(self) -> int:
        return len(self._queue)

    def expecting(self) -> contextlib.AbstractContextManager[None]:
        """Announce an item that will be submitted soon (wrap its preprocessing)."""
        return self._queue.expecting()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ended = self._loop.create_future()
        self._threads_left = self.concurrent_runs
        for index in range(self.concurrent_runs):
            suffix = f"-{index}" if self.concurrent_runs > 1 else ""
            name = f"inference-{self.name}{suffix}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        if self.guard.timeout_s is not None:
            watch = self._watch_runs(self.guard.timeout_s)
            self._watch = asyncio.create_task(watch, name=f"stall-watch-{self.name}")

    async def stop(self) -> None:
        """Stop accepting items, finish the queued ones, then end the threads. A stalled run is
        not waited for (it may never return): its thread is abandoned."""
        self._stopping = True
        self._queue.close()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._ended is not None and self.stalled is None:
            # a thread that died already said why (_thread_ended); stopping must still succeed
            with contextlib.suppress(Exception):
                await self._ended

    async def retire(self, wait_s: float = 60.0) -> None:
        """stop(), once no item is still being preprocessed for this batcher: after a hot
        swap, items prepared by this version's tokenizer and preprocessing must run on this
        version's graph, so the old batcher takes them before it drains."""
        end = time.monotonic() + wait_s
        while self._queue.incoming > 0 and time.monotonic() < end:
            await asyncio.sleep(0.005)
        await self.stop()

    async def submit(self, inputs: In, deadline: float) -> BatchOutcome[Out]:
        """Queue one item and wait for its own output (raises the item's ServiceError)."""
        if (refusal := self._refusal(deadline)) is not None:
            if refusal[0]:
                self._hooks.item_rejected(self.name, refusal[0])
            raise refusal[1]
        assert self._loop is not None
        future: asyncio.Future[BatchOutcome[Out]] = self._loop.create_future()
        self._hooks.queue_depth(self.name, self._queue.put(_Pending(inputs, deadline, future)))
        return await future

    def announce(self) -> None:
        """An item will be handed over by `submit_announced` (from a preprocessing worker)."""
        self._queue.announce()

    def submit_announced(
        self, inputs: In | None, deadline: float, future: asyncio.Future[BatchOutcome[Out]]
    ) -> None:
        """Queue an announced item from a preprocessing worker thread, straight into the queue
        (no trip through the event loop); its outcome or refusal completes `future` on the
        loop. `inputs` None: the item will not come (its preprocessing failed)."""
        if inputs is None:
            self._queue.arrived(None)
            return
        if (refusal := self._refusal(deadline)) is not None:
            self._queue.arrived(None)
            self._post(self._refuse, future, *refusal)
            return
        self._hooks.queue_depth(self.name, self._queue.arrived(_Pending(inputs, deadline, future)))

    def _refusal(self, deadline: float) -> tuple[str, Exception] | None:
        """Why an item cannot be queued now: (rejection reason for the hooks or "", error)."""
        if self.stalled is not None:
            return "", ModelStalled(f"model {self.name} is stalled: {self.stalled}")
        if not self.running or self._loop is None:
            return "", ModelNotReady(f"model {self.name} is not accepting requests")
        if len(self._queue) >= self.queue_size:
            return "queue_full", QueueFull(
                f"model {self.name} has {len(self._queue)} items queued; retry later",
                {"Retry-After": "1"},
            )
        if time.monotonic() >= deadline:
            return "deadline_exceeded", DeadlineExceeded(
                "the request deadline passed before inference"
            )
        return None

    def _refuse(
        self, future: asyncio.Future[BatchOutcome[Out]], reason: str, error: Exception
    ) -> None:
        if reason:
            self._hooks.item_rejected(self.name, reason)
        if not future.done():
            future.set_exception(error)

    # -- the inference thread ------------------------------------------------------------------

    def _work(self) -> None:
        """One inference thread: take a batch, run it, repeat until `_next_batch` says stop."""
        error: BaseException | None = None
        free_since = 0.0  # time.monotonic() when this thread's last run ended
        try:
            while batch := self._next_batch(free_since):
                try:
                    self._process(batch)
                except Exception:  # the loop must outlive any one batch
                    logger.exception("batcher %s: unexpected error; failing its batch", self.name)
                    self._post(self._fail_all, batch, InferenceFailed("inference failed"))
                finally:
                    free_since = time.monotonic()
        except BaseException as exc:
            error = exc
        finally:
            self._post(self._thread_ended, error)

    def _next_batch(self, free_since: float) -> list[_Pending[In, Out]]:
        """The next batch (blocking); [] once stopping and nothing is left."""
        return self._queue.take(free_since)

    def _process(self, batch: list[_Pending[In, Out]]) -> None:
        """Skip items whose caller went away; answer expired ones 504 without running them."""
        now = time.monotonic()
        live = [item for item in batch if not item.future.done()]
        expired = [item for item in live if now >= item.deadline]
        if expired:
            live = [item for item in live if now < item.deadline]
        if expired or not live:
            self._post(self._expire, expired)
        if live:
            self._execute(live)

    def _execute(self, batch: list[_Pending[In, Out]]) -> None:
        """Run one batch; its outcome goes to the event loop. A failed batch is retried item by
        item; a stalled one was answered by the watch, and its outputs are dropped."""
        run = _Run(batch, time.monotonic())
        with self._run_lock:
            self._runs.append(run)
        error: Exception | None = None
        outputs: Sequence[Out] = ()
        try:
            outputs = self._run_batch([i.inputs for i in batch])
            if len(outputs) != len(batch):
                raise RuntimeError(f"{len(outputs)} outputs for {len(batch)} items")
        except Exception as exc:
            error = exc
        elapsed = time.monotonic() - run.start
        with self._run_lock:
            self._runs.remove(run)
        if run.stalled_at is not None:
            self._post(self._stall_ended, run)
        elif error is None:
            self._post(self._deliver, batch, outputs, run.start, elapsed)
        else:
            self._post(self._failed, batch, elapsed, type(error).__name__)
            if len(batch) > 1:
                for item in batch:
                    if not item.future.done():
                        self._execute([item])

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the event loop (futures and hooks live there)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: an abandoned stalled thread
            self._loop.call_soon_threadsafe(callback, *args)

    # -- on the event loop: outcomes -----------------------------------------------------------

    def _deliver(
        self, batch: list[_Pending[In, Out]], outputs: Sequence[Out], start: float, elapsed: float
    ) -> None:
        self._hooks.queue_depth(self.name, len(self._queue))
        self._hooks.batch_done(self.name, len(batch), elapsed, True)
        if (slow_s := self.guard.slow_s) is not None and elapsed > slow_s:
            self._hooks.model_fault(self.name, "slow")
        bad = self._answer(batch, outputs, start, elapsed)
        self._ran(not bad, "non_finite", "NaN or infinite outputs")

    def _failed(self, batch: list[_Pending[In, Out]], elapsed: float, cause: str) -> None:
        self._hooks.queue_depth(self.name, len(self._queue))
        self._hooks.batch_done(self.name, len(batch), elapsed, False)
        self._ran(False, "exception", cause)
        if len(batch) == 1:
            logger.warning("batcher %s: item failed: %s", self.name, cause)
            self._fail(batch[0], InferenceFailed("the model failed on this input"))
        else:
            logger.warning("batcher %s: batch of %d failed; retrying singly", self.name, len(batch))

    def _expire(self, items: list[_Pending[In, Out]]) -> None:
        self._hooks.queue_depth(self.name, len(self._queue))
        for item in items:
            self._hooks.item_rejected(self.name, "deadline_exceeded")
            self._fail(item, DeadlineExceeded("the request deadline passed in the queue"))

    def _fail_all(self, items: list[_Pending[In, Out]], error: Exception) -> None:
        for item in items:
            self._fail(item, error)

    def _thread_ended(self, error: BaseException | None) -> None:
        """A thread that ended without stop() is dead: the batcher is no longer running (say
        why, and fail what is queued); `_ended` completes once the last thread has left."""
        self._threads_left -= 1
        if self._threads_left <= 0 and self._ended is not None and not self._ended.done():
            self._ended.set_result(None)
        if self._stopping:
            return
        if self.failure is not None:  # another thread died first: still say this one did
            logger.error("batcher %s: another inference thread died", self.name, exc_info=error)
            return
        self.failure = f"batcher loop died: {type(error).__name__ if error else 'ended'}"
        logger.error(
            "batcher %s: %s; the model is not ready", self.name, self.failure, exc_info=error
        )
        self._fail_all(self._queue.drain(), ModelNotReady(f"model {self.name}: {self.failure}"))

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

    # -- on the event loop: the stall watch ----------------------------------------------------

    async def _watch_runs(self, timeout: float) -> None:
        """Look at the runs in progress WATCH_PERIODS times per deadline; one past it stalls."""
        period = min(1.0, timeout / WATCH_PERIODS)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            with self._run_lock:
                late = [r for r in self._runs if r.stalled_at is None and now - r.start >= timeout]
                for run in late:
                    run.stalled_at = now
            for run in late:
                self._stall(run, timeout)

    def _stall(self, run: _Run[In, Out], timeout: float) -> None:
        batch = run.batch
        self._stalled.append(run)
        self.stalled = f"a model run gave no answer within {timeout:g}s (RUN_TIMEOUT_S)"
        logger.error("batcher %s: %s; not ready until it returns", self.name, self.stalled)
        self._hooks.model_fault(self.name, "stall")
        self._hooks.batch_done(self.name, len(batch), timeout, False)
        error = ModelStalled(f"model {self.name} is stalled: {self.stalled}")
        self._fail_all(batch, error)
        self._fail_all(self._queue.drain(), error)
        self._hooks.queue_depth(self.name, 0)

    def _stall_ended(self, run: _Run[In, Out]) -> None:
        """A stalled run returned; runs are accepted again once every stalled run has."""
        self._stalled.remove(run)
        waited = time.monotonic() - (run.stalled_at or time.monotonic())
        logger.warning("batcher %s: the stalled run returned after %.1fs more", self.name, waited)
        if not self._stalled:
            self.stalled = None

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
