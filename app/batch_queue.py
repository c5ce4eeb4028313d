"""The queue between callers and a model's inference threads, and when a batch closes.

Callers (the event loop, preprocessing workers) put items; each inference thread takes its
batches itself, so between two runs the model waits for nothing but this lock — not for the
event loop to notice that a run ended and hand it the next batch (under load that hand-off
cost 6-10 ms of idle model per batch, issue 26). First in, first out; with several threads
(concurrent runs) each batch goes to one of them.

A batch closes when it is full (max_batch_size), or max_delay after it could have started —
since its oldest item was queued, or since the taking thread's last run ended if it was busy
then — or at once when no more items are known to be on their way (announced with
`expecting()` while they are preprocessed), so a lone request never waits for batch-mates
that are not coming.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Queued(Protocol):
    @property
    def enqueued(self) -> float: ...  # time.monotonic() when put


T = TypeVar("T", bound=Queued)


class BatchQueue(Generic[T]):
    """A FIFO guarded by one condition; `take` blocks an inference thread until a batch closes.
    Several threads may take from one queue (a model's concurrent runs): each batch goes to one."""

    def __init__(self, max_batch_size: int, max_delay_s: float) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size}")
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self._items: deque[T] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._incoming = 0  # items being preprocessed, not yet put
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def incoming(self) -> int:
        return self._incoming

    def put(self, item: T) -> int:
        """Queue one item; returns the depth after it."""
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            return len(self._items)

    def announce(self) -> None:
        """An item will be put soon (it is being preprocessed): a batch may wait for it."""
        with self._ready:
            self._incoming += 1

    def arrived(self, item: T | None) -> int:
        """An announced item is here: put it (None: it will not come). Returns the depth. One
        step, so a waiting batch sees the item before it sees the announcement end; an item
        that does not come wakes nobody: a batch held for it closes at its max_delay."""
        with self._ready:
            self._incoming -= 1
            if item is not None:
                self._items.append(item)
                self._ready.notify()
            return len(self._items)

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """announce() while the block runs (it wraps an item's preprocessing)."""
        self.announce()
        try:
            yield
        finally:
            self.arrived(None)

    def close(self) -> None:
        """No more batches after the queued items: `take` returns [] once empty."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def drain(self) -> list[T]:
        """Remove and return every queued item."""
        with self._ready:
            items = list(self._items)
            self._items.clear()
            return items

    def _more_coming(self) -> bool:
        """Room in the batch and an item on its way (call with the lock held)."""
        return len(self._items) < self.max_batch_size and self._incoming > 0 and not self._closed

    def take(self, free_since: float) -> list[T]:
        """The next batch (blocking); [] once closed and empty. `free_since`: when the calling
        thread's last run ended."""
        with self._ready:
            while True:
                while not self._items:
                    if self._closed:
                        return []
                    self._ready.wait()
                if self.max_delay_s > 0:
                    while self._more_coming() and self._items:
                        # from the oldest item now queued: another thread may have taken it
                        close_at = max(self._items[0].enqueued, free_since) + self.max_delay_s
                        remaining = close_at - time.monotonic()
                        if remaining <= 0:
                            break
                        self._ready.wait(remaining)
                # another runner may have taken the items while this one waited for more
                if self._items:
                    size = min(len(self._items), self.max_batch_size)
                    batch = [self._items.popleft() for _ in range(size)]
                    if self._items:
                        self._ready.notify()  # what is left is another runner's next batch
                    return batch
