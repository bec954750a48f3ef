"""Optimizers by torch.optim class name, learning-rate schedules by name, and the parameter
groups of discriminative learning rates."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
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


Factor = Callable[[int], float]


def _cosine(total_steps: int, warmup_steps: int) -> Factor:
    """Linear warm-up, then cosine decay to 1% of the base learning rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _onecycle(total_steps: int, warmup_steps: int) -> Factor:
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

    return factor


SCHEDULES: dict[str, Callable[[int, int], Factor] | None] = {
    "cosine": _cosine,
    "onecycle": _onecycle,
    "constant": None,
}


def schedule(
    optimizer: Optimizer, name: str, total_steps: int, warmup_steps: int, restart: int = 0
) -> LRScheduler | None:
    """The per-step schedule ``name`` over ``total_steps`` optimizer steps (``None`` for
    ``constant``). With ``restart`` (the step at which fine-tuning unfreezes the backbone),
    the schedule runs once over the first ``restart`` steps and again, warm-up included,
    over the rest: the unfrozen layers start at the bottom of a warm-up, as fastai's
    ``fine_tune`` does. Each parameter group's rate is its own base rate times the factor."""
    build = SCHEDULES[name]
    if build is None:
        return None
    total_steps = max(1, total_steps)
    if not 0 < restart < total_steps:
        return LambdaLR(optimizer, build(total_steps, min(warmup_steps, total_steps)))
    first = build(restart, min(warmup_steps, restart))
    rest = total_steps - restart
    second = build(rest, min(warmup_steps, rest))

    def factor(step: int) -> float:
        return first(step) if step < restart else second(step - restart)

    return LambdaLR(optimizer, factor)


def parameter_groups(
    module: nn.Module, groups: list[list[nn.Parameter]], lr: float, lr_decay: float
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: ``groups`` (first layers first, the head last) with the
    rates ``lr * lr_decay**k``, k counted from the head; any parameter of ``module`` outside
    them (a task's own) trains with the head."""
    seen: set[int] = set()
    out = []
    for depth, params in enumerate(reversed(groups)):
        mine = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in mine)
        out.append({"params": mine, "lr": lr * lr_decay**depth})
    out[0]["params"] += [p for p in module.parameters() if id(p) not in seen]
    return [group for group in reversed(out) if group["params"]]
