"""Micro-batching: images of concurrent requests share one model call.

One worker thread takes the first queued image, then keeps taking more until it holds
``max_batch`` or ``max_wait`` seconds have passed, and runs ``process`` on them all. It waits
only while images are on their way: requests announce themselves (:meth:`expect`) before
decoding, so a lone request runs at once, while under load the batches fill up and the
per-call overhead of ONNX Runtime and of the thread hand-offs is paid once for many images.
The event loop only awaits futures.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

Entry = tuple[Any, asyncio.Future, asyncio.AbstractEventLoop]
WAKE = "wake"  # a queue item that only wakes the worker: an announced request brought nothing


class BatcherStopped(RuntimeError):
    """The batcher is shutting down and takes no more work."""


def _resolve(futures: list[asyncio.Future], results: list[Any] | None, error: Exception | None):
    for i, future in enumerate(futures):
        if future.done():  # the request was cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(results[i])  # type: ignore[index]


class MicroBatcher:
    """Runs ``process(items) -> results`` (one result per item) on batches of queued items."""

    def __init__(
        self,
        process: Callable[[list[Any]], list[Any]],
        max_batch: int = 32,
        max_wait: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.process, self.max_batch, self.max_wait = process, max(1, max_batch), max_wait
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[Entry | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.expected = 0  # announced requests still decoding (changed on the event loop only)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> MicroBatcher:
        if self._thread is None:
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
            self._thread.start()
        return self

    def expect(self) -> None:
        """A request will submit soon (call on the event loop, then :meth:`submit` or
        :meth:`withdraw`): a batch being filled waits for it, up to ``max_wait``."""
        self.expected += 1

    def withdraw(self) -> None:
        """An announced request submits nothing (all its images were unreadable, or it failed)."""
        self.expected -= 1
        self._queue.put(WAKE)

    async def submit(self, items: list[Any], announced: bool = False) -> list[Any]:
        """The results of ``items``, computed in batches with other requests' items."""
        if announced:
            self.expected -= 1
        if self._stopped or not self.alive:
            raise BatcherStopped("the server is shutting down")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, future in zip(items, futures, strict=True):
            self._queue.put((item, future, loop))
        return list(await asyncio.gather(*futures))

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the worker."""
        self._stopped = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _next(self, deadline: float) -> Entry | str | None:
        """The next queued item; waits (until ``deadline``) only while requests are announced.
        Raises queue.Empty when the batch should run."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            left = deadline - time.monotonic()
            if self.expected <= 0 or left <= 0:
                raise
            return self._queue.get(timeout=left)

    def _collect(self, first: Entry) -> tuple[list[Entry], bool]:
        """``first`` and what else comes in time; True when told to stop."""
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                entry = self._next(deadline)
            except queue.Empty:
                break
            if entry is None:
                return batch, True
            if not isinstance(entry, str):
                batch.append(entry)
        return batch, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            if isinstance(first, str):
                continue
            batch, stop = self._collect(first)
            self._execute(batch)
            if stop:
                break
        self._reject_late()

    def _reject_late(self) -> None:
        """Items that raced in behind the stop signal get an error instead of no answer."""
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return
            if entry is not None and not isinstance(entry, str):
                _, future, loop = entry
                stopped = BatcherStopped("the server is shutting down")
                try:
                    loop.call_soon_threadsafe(_resolve, [future], None, stopped)
                except RuntimeError:
                    pass

    def _execute(self, batch: list[Entry]) -> None:
        results, error = None, None
        try:
            results = self.process([item for item, _, _ in batch])
        except Exception as exc:  # answered as a 500 by the requests that wait on it
            error = exc
        if self.on_batch is not None:
            self.on_batch(len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
        for i, (_, _, loop) in enumerate(batch):
            by_loop.setdefault(loop, []).append(i)
        for loop, slots in by_loop.items():  # one wake-up of the event loop per batch
            futures = [batch[i][1] for i in slots]
            values = None if results is None else [results[i] for i in slots]
            try:
                loop.call_soon_threadsafe(_resolve, futures, values, error)
            except RuntimeError:  # that loop has closed: nobody waits any more
                pass
