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


def test_a_taker_whose_batch_another_took_waits_for_the_next_items() -> None:
    """Two inference threads on one queue: both wait for batch-mates of item 0; one takes
    items 0 and 1, and the other must not mistake the empty queue for a closed one."""
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=8, max_delay_s=0.2)
    queue.put(Item(0))
    queue.announce()
    batches: list[list[int]] = []
    takers = [
        threading.Thread(target=lambda: batches.append([i.n for i in queue.take(0.0)]))
        for _ in range(2)
    ]
    for taker in takers:
        taker.start()
    time.sleep(0.05)
    queue.arrived(Item(1))
    time.sleep(0.4)  # the other taker's wait for batch-mates has timed out on an empty queue
    queue.put(Item(2))
    for taker in takers:
        taker.join(10)
    assert sorted(batches) == [[0, 1], [2]]


def test_two_takers_get_every_item_once_in_order() -> None:
    queue: BatchQueue[Item] = BatchQueue(max_batch_size=3, max_delay_s=0.001)
    batches: list[list[int]] = []
    lock = threading.Lock()

    def take_all() -> None:
        while batch := queue.take(time.monotonic()):
            with lock:
                batches.append([i.n for i in batch])

    takers = [threading.Thread(target=take_all) for _ in range(2)]
    for taker in takers:
        taker.start()
    for n in range(300):
        queue.put(Item(n))
        if n % 7 == 0:
            time.sleep(0.0005)
    while len(queue):
        time.sleep(0.01)
    queue.close()
    for taker in takers:
        taker.join(10)
    assert sorted(n for batch in batches for n in batch) == list(range(300))
    assert all(0 < len(b) <= 3 and b == list(range(b[0], b[0] + len(b))) for b in batches)
