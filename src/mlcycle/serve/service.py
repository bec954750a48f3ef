"""What the endpoints do, apart from HTTP: predict (parse the body, micro-batch: the batcher's
thread decodes, preprocesses and runs a batch; record a store row per answered image),
feedback, readiness."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlcycle.serve.card import model_card
from mlcycle.serve.inputs import InputError
from mlcycle.serve.metrics import Metrics
from mlcycle.serve.micro_batcher import MicroBatcher
from mlcycle.serve.model import ServedModel, Unreadable
from mlcycle.serve.store import PredictionStore, new_id, prediction_row, unreachable

RECENT = 100_000  # prediction ids remembered: feedback may arrive before the row is written
INLINE_BYTES = 256_000  # bodies up to this size are parsed on the event loop


@dataclass
class Settings:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_bytes: int = 20_000_000
    max_images: int = 64
    token: str | None = None
    workers: int = max(2, min(8, os.cpu_count() or 2))  # decode threads

    def public(self) -> dict[str, Any]:
        return {
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_ms,
            "max_bytes": self.max_bytes,
            "max_images": self.max_images,
            "token_required": bool(self.token),
        }


def store_alive(store: PredictionStore) -> bool:
    return store.alive


class Service:
    """The model, its batcher, the store and the metrics of one server."""

    def __init__(self, model: ServedModel, store: PredictionStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.metrics = Metrics()
        self.swap(model)
        self.metrics.watch(
            "mlcycle_serve_store_rows_written", "Rows the store has written", lambda: store.written
        )
        self.metrics.watch(
            "mlcycle_serve_store_errors", "Failed store writes", lambda: store.failures
        )
        self.metrics.watch(
            "mlcycle_serve_store_rows_buffered",
            "Rows kept in memory while the store does not answer",
            lambda: store.buffered,
        )
        self.metrics.watch(
            "mlcycle_serve_store_rows_lost",
            "Rows never written (refused, over the buffer, or the store away at shutdown)",
            lambda: store.lost,
        )
        max_batch = settings.max_batch if model.batched else 1
        self.batcher = MicroBatcher(
            self.process, max_batch, settings.max_wait_ms / 1000, self.metrics.batch_size.observe
        )
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="decode")
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT)
        self.recent_set: set[str] = set()

    def swap(self, model: ServedModel) -> None:
        """Serve ``model`` from now on (a champion reload); requests already decoding finish
        with the model that decoded them."""
        self.card = model_card(model, {**self.settings.public(), "batched": model.batched})
        self.metrics.model.info({"version": model.version, "task": model.task})
        self.model = model

    def start(self) -> None:
        self.store.start()
        self.batcher.start()

    def stop(self) -> None:
        """After the last request: finish batches, write every queued row."""
        self.batcher.stop()
        self.pool.shutdown(wait=True)
        self.store.close()

    def ready(self) -> dict[str, bool]:
        return {
            "model_loaded": self.model.run is not None,
            "batcher_alive": self.batcher.alive,
            "store_writer_alive": store_alive(self.store),
            "store_recording": self.store.recording,  # False while the database does not answer
        }

    # --- predict ------------------------------------------------------------------------------

    def _read_all(self, model: ServedModel, kind: str, content_type: str, body: bytes) -> list[Any]:
        """Parse the body and read each input (in a worker thread): an image decoded, a table
        row read, or an :class:`Unreadable`."""
        return model.read(kind, content_type, body, self.settings.max_images)

    @staticmethod
    def process(entries: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
        """The batcher's call: each input through the model that read it (one model except
        around a reload)."""
        out: list[Any] = [None] * len(entries)
        groups: dict[int, list[int]] = {}
        for i, (model, _) in enumerate(entries):
            groups.setdefault(id(model), []).append(i)
        for slots in groups.values():
            model = entries[slots[0]][0]
            answers = model.process([entries[i][1] for i in slots])
            for i, answer in zip(slots, answers, strict=True):
                out[i] = answer
        return out

    async def _read(self, model: Any, kind: str, content_type: str, body: bytes) -> list[Any]:
        """The request's inputs: a small body is parsed on the event loop (a hand-off to a
        thread costs more than parsing it), a large one in the pool, announced to the batcher
        so that a batch being filled waits for it."""
        if len(body) <= INLINE_BYTES:
            return self._read_all(model, kind, content_type, body)
        self.batcher.expect()
        loop = asyncio.get_running_loop()
        try:
            items = await loop.run_in_executor(
                self.pool, self._read_all, model, kind, content_type, body
            )
        except BaseException:
            self.batcher.withdraw()
            raise
        if not any(not isinstance(item, Unreadable) for item in items):
            self.batcher.withdraw()
        return items

    async def predict(
        self, kind: str, content_type: str, body: bytes, start: float
    ) -> tuple[int, dict[str, Any]]:
        model = self.model
        items = await self._read(model, kind, content_type, body)
        entries = [(model, item) for item in items if not isinstance(item, Unreadable)]
        announced = len(body) > INLINE_BYTES
        answers = iter(await self.batcher.submit(entries, announced=announced) if entries else [])
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        results, answered = [], 0
        for item in items:
            # an input unreadable when parsed, or when decoded in the batch
            answer = item if isinstance(item, Unreadable) else next(answers)
            if isinstance(answer, Unreadable):
                self.metrics.rejected.labels(answer.reason).inc()
                results.append({"name": answer.name, **answer.where, "error": answer.error})
            else:
                results.append(self._answer(model, item, answer, latency_ms))
                answered += 1
        payload = {"model_version": model.version, "results": results}
        if not answered:
            first = results[0]["error"]
            return 400, {"error": f"no {model.noun} could be read ({first})", **payload}
        return 200, payload

    def _answer(self, model: Any, item: Any, answer: dict[str, Any], latency_ms: float) -> dict:
        """The response entry of one input; its row goes to the store's queue."""
        pid = new_id()
        predicted, confidence, top_k = model.form.stored(answer)
        self.store.add(
            prediction_row(
                id=pid,
                model_version=model.version,
                source="api",
                predicted=predicted,
                confidence=confidence,
                top_k=top_k,
                latency_ms=latency_ms,
                **model.stored_columns(item),
            )
        )
        self._remember(pid)
        self.metrics.images.labels(model.form.counted(answer)).inc()
        return {"prediction_id": pid, **model.entry(item), **answer}

    def _remember(self, pid: str) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(pid)
        self.recent_set.add(pid)

    # --- feedback -----------------------------------------------------------------------------

    def _record_feedback(self, prediction_id: str, label: str) -> bool:
        away = InputError(503, "store_away", "the prediction store does not answer; retry later")
        if not self.store.recording:
            raise away
        try:
            if self.store.add_feedback(prediction_id, label):
                return True
            if prediction_id in self.recent_set:  # answered, its row still queued: write it first
                self.store.flush()
                return self.store.add_feedback(prediction_id, label)
        except Exception as exc:
            if unreachable(exc):
                raise away from exc
            raise
        return False

    async def feedback(self, prediction_id: str, label: str) -> None:
        names = self.model.names
        if self.model.form.feedback_is_class and label not in names:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise InputError(400, "bad_label", f"label '{label[:100]}' is not a class: {shown}")
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(self.pool, self._record_feedback, prediction_id, label):
            raise InputError(404, "unknown_prediction", f"no prediction '{prediction_id}'")
