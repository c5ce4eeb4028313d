"""The batch queue on its own: first in first out, when a batch closes, announced items."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from app.batch_queue import BatchQueue


@dataclass
class Item:
    n: int
    enqueued: float = field(default_factory=time.monotonic)


def test_batches_are_first_in_first_out_up_to_the_size() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=3, max_delay_s=0.0)
    for n in range(7):
        queue.put(Item(n))
    batches = [[i.n for i in queue.take(0.0)] for _ in range(3)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_batch_waits_for_an_announced_item_that_arrives() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=8, max_delay_s=30.0)
    queue.put(Item(0))
    queue.announce()
    timer = threading.Timer(0.05, lambda: queue.arrived(Item(1)))
    timer.start()
    start = time.monotonic()
    batch = queue.take(0.0)
    assert [i.n for i in batch] == [0, 1] and time.monotonic() - start < 20
    assert queue.incoming == 0


def test_an_announced_item_that_never_comes_holds_the_batch_only_max_delay() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=8, max_delay_s=0.05)
    queue.put(Item(0))
    queue.announce()
    start = time.monotonic()
    assert [i.n for i in queue.take(0.0)] == [0]
    assert time.monotonic() - start >= 0.04
    assert queue.arrived(None) == 0 and queue.incoming == 0


def test_nothing_announced_means_no_wait() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=8, max_delay_s=30.0)
    queue.put(Item(0))
    start = time.monotonic()
    assert len(queue.take(0.0)) == 1 and time.monotonic() - start < 20


def test_close_ends_takes_once_empty_and_drain_empties() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=8, max_delay_s=0.0)
    queue.put(Item(0))
    queue.close()
    assert len(queue.take(0.0)) == 1
    assert queue.take(0.0) == []
    queue.put(Item(1))
    assert [i.n for i in queue.drain()] == [1] and len(queue) == 0
