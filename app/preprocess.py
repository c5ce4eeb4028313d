"""Decode + tokenize one item, in a bounded worker pool so it overlaps inference.

The transforms are the shared contract's (`app.contract.image` / `text`), exactly as in
training. Pillow and the Rust tokenizer release the GIL, so a few threads keep the inference
thread fed without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.contract.image import ImageDecodeError, ImageLimits, preprocess_image
from app.contract.manifest import Manifest
from app.contract.text import TextEncoder
from app.errors import QueueFull

T = TypeVar("T")
logger = logging.getLogger("fusionserve.preprocess")


@dataclass(frozen=True)
class PreparedInputs:
    """One item ready for the graph (no batch axis)."""

    pixel_values: np.ndarray  # f32 [3, H, W]
    input_ids: np.ndarray  # i64 [L]
    attention_mask: np.ndarray  # i64 [L]
    image_pixels: int  # width × height as received (for input-size metrics)
    text_tokens: int  # real tokens before truncation
    text_truncated: bool
    text_empty: bool = False  # blank text: the bundle's fallback was substituted


@dataclass(frozen=True)
class InputSpec:
    """A bundle's preprocessing: image transform parameters, its tokenizer, client limits."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    encoder: TextEncoder
    limits: ImageLimits

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, encoder: TextEncoder, limits: ImageLimits
    ) -> InputSpec:
        pre = manifest.preprocessing
        return cls(pre.image_size, pre.mean, pre.std, encoder, limits)


def prepare(image: bytes, text: str, spec: InputSpec) -> PreparedInputs:
    """Raw bytes + text → graph inputs; raises ImageDecodeError with a stable code."""
    try:
        prepared = preprocess_image(image, spec.image_size, spec.mean, spec.std, spec.limits)
    except ImageDecodeError:
        raise
    except Exception:  # a malformed file can trip a decoder bug (struct.error, IndexError, ...)
        raise ImageDecodeError("invalid_image", "the image could not be decoded") from None
    encoded = spec.encoder.encode([text])
    return PreparedInputs(
        pixel_values=prepared.pixels,
        input_ids=encoded.input_ids[0],
        attention_mask=encoded.attention_mask[0],
        image_pixels=prepared.source_pixels,
        text_tokens=encoded.token_counts[0],
        text_truncated=encoded.truncated[0],
        text_empty=not text.strip(),
    )


class PreprocessPool:
    """A fixed number of worker threads and a bounded backlog (excess → 429 queue_full).

    Plain threads on one SimpleQueue rather than a ThreadPoolExecutor: `submit` hands a job
    over with no Future, work item or thread-count check per call (ThreadPoolExecutor.submit
    showed in the event loop's profile, issue 26), and a job reports its own outcome."""

    def __init__(self, workers: int, max_pending: int) -> None:
        self.max_pending = max_pending
        self.pending = 0  # jobs submitted and not finished (guarded by _lock)
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"preprocess_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` in a worker; it must report its own outcome (it never raises here)."""
        with self._lock:
            if self.pending >= self.max_pending:
                raise QueueFull("too many requests waiting for preprocessing", {"Retry-After": "1"})
            self.pending += 1
        self._jobs.put(job)

    async def run(self, fn: Callable[..., T], *args: object) -> tuple[T, float]:
        """Run fn(*args) in the pool; returns (result, seconds including the wait for a worker)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[T, float]] = loop.create_future()
        start = time.perf_counter()

        def job() -> None:
            try:
                outcome = fn(*args), time.perf_counter() - start
            except Exception as exc:
                resolve_soon(loop, future, error=exc)
            else:
                resolve_soon(loop, future, outcome)

        self.submit(job)
        return await future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a job reports its own outcome; this is a bug, not a request's
                logger.exception("a preprocessing job raised; the worker goes on")
            finally:
                with self._lock:
                    self.pending -= 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


def resolve_soon(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[T],
    result: T | None = None,
    error: BaseException | None = None,
) -> None:
    """From another thread: complete `future` on its loop, unless it is done (cancelled)."""

    def resolve() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(resolve)
