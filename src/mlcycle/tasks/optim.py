"""Optimizers by torch.optim class name and learning-rate schedules by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from mlcycle.core.errors import UserError


def optimizer_class(name: str) -> type[Optimizer]:
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        names = [n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)]
        optimizers = sorted(
            n for n in names if issubclass(getattr(torch.optim, n), Optimizer) and n != "Optimizer"
        )
        raise UserError(
            f"model.optimizer '{name}' is not a torch.optim optimizer; use one of: {', '.join(optimizers)}"
        )
    return cls


def _cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int, **_: Any) -> LRScheduler:
    """Linear warm-up, then cosine decay to 1% of the base learning rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def _onecycle(optimizer: Optimizer, total_steps: int, warmup_steps: int, **_: Any) -> LRScheduler:
    """One-cycle learning rate: cosine rise from lr/25 over the warm-up (30% by default), then
    cosine decay to lr/250000. A function of the step alone, so a resumed run that trains for
    more epochs recomputes the schedule instead of running past its end."""
    rise = warmup_steps or max(1, int(0.3 * total_steps))
    start, end = 1 / 25, 1 / 250_000

    def factor(step: int) -> float:
        if step < rise:
            return start + (1 - start) * (1 - math.cos(math.pi * step / rise)) / 2
        progress = min(1.0, (step - rise) / max(1, total_steps - rise))
        return end + (1 - end) * (1 + math.cos(math.pi * progress)) / 2

    return LambdaLR(optimizer, factor)


SCHEDULERS: dict[str, Callable[..., LRScheduler] | None] = {
    "cosine": _cosine,
    "onecycle": _onecycle,
    "constant": None,
}
