"""Training metric updates queued, and applied together before Lightning computes the epoch.

A torchmetrics ``update`` checks, converts and broadcasts its input at every call: 60-150 us on
the CPU for a mean of the loss or an accuracy, a few per cent of a small model's step. Queued
and applied as one update over the concatenated inputs (every ``every`` steps, and when the
epoch's training batches end), a metric adds the same counts; a mean adds the same values, in
another order (the float32 sum differs in its last bits).
"""

from __future__ import annotations

import torch
from lightning.pytorch import Trainer
from torchmetrics import Metric

FLUSH_EVERY = 64  # queued updates per metric before they are applied


class DeferredUpdates:
    """Per-step metric updates, queued per metric.

    Args:
        every: queued updates of one metric that are applied at once.
    """

    def __init__(self, every: int = FLUSH_EVERY) -> None:
        self.every = every
        self._queues: dict[int, tuple[Metric, list[tuple[torch.Tensor, ...]]]] = {}

    def add(self, metric: Metric, *tensors: torch.Tensor) -> None:
        """Queue ``metric.update(*tensors)``; each tensor's first dimension is its samples (a
        scalar counts as one)."""
        queue = self._queues.setdefault(id(metric), (metric, []))[1]
        queue.append(tuple(t.reshape(1) if t.ndim == 0 else t for t in tensors))
        if len(queue) >= self.every:
            _apply(metric, queue)

    def flush(self) -> None:
        """Apply every queued update."""
        for metric, queue in self._queues.values():
            _apply(metric, queue)


def _apply(metric: Metric, queue: list[tuple[torch.Tensor, ...]]) -> None:
    if queue:
        metric.update(*(torch.cat(parts) for parts in zip(*queue, strict=True)))
        queue.clear()


def batches_end_here(trainer: Trainer) -> bool:
    """Whether the training batch just done is the epoch's last: the loader's last, ``max_steps``
    reached, or a stop asked for (harmless when ``min_epochs`` overrules it)."""
    if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or trainer.should_stop:
        return True
    return 0 <= trainer.max_steps <= trainer.global_step
