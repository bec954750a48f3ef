#!/usr/bin/env python
"""Where a training step's time goes: train.py against a plain PyTorch loop, part by part.

    python benchmarks/step_costs.py [--epochs 6] [--rounds 2] [--config configs/quickstart.yaml]
                                    [--worker] [--grad-norm-every N]

The companion of ``overhead.py``: that one says how much slower a step is, this one says why.
Both sides train the quick start in alternating rounds, with figures drawn at the epoch's end in
the training process (``MLCYCLE_FIGURES=inline``), so only this process is timed. Inside the
training batches (the first epoch of each round left out) it times the data loader's
``__next__``, the model's forward pass, the loss, ``backward``, the Adam update, ``zero_grad``,
the scheduler step and, on the mlcycle side, every callback's per-step hooks one by one and all
callback calls together (the difference is Lightning calling them). What no timer covers is
"the rest": the loop itself (Lightning's hooks, closure, strategy and precision layers on one
side; a for loop on the other). Prints milliseconds per step, the median over the rounds, and
the fixed per-step cost: all callback calls plus the mlcycle loop's rest beyond the plain one's
(target under 1.5 ms).
``--worker`` leaves the figures to the figure worker, as train.py does, to see what its drawing
beside training costs: compare the forward and backward rows with a run without it (the plain
rounds run beside the worker too, so the ratio says nothing then).
``--grad-norm-every N`` gives the run a ``GradNorm(every=N)`` of its own (1: the norm of every
step, as before it was sampled; train.py's default takes every 8th).
"""

from __future__ import annotations

import os
import sys

if "--worker" not in sys.argv:
    os.environ["MLCYCLE_FIGURES"] = "inline"  # before mlcycle starts a figure worker

import argparse
import collections
import importlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback
from lightning.pytorch.trainer import call as lightning_call
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data.dataloader import _BaseDataLoaderIter

from mlcycle.callbacks.idle_hooks import BATCH_HOOKS
from mlcycle.models import build_model
from mlcycle.tasks.optim import schedule
from mlcycle.training.fit import fit

PER_STEP_HOOKS = BATCH_HOOKS[:6]  # the training step's
CALLBACKS = "callbacks, all calls"


class Clock:
    """Seconds per label while ``on``; wrappers installed once, for both sides."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.on = False

    def timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return function(*args, **kwargs)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return wrapper

    def wrap(self, owner: Any, name: str, label: str) -> None:
        setattr(owner, name, self.timed(getattr(owner, name), label))


def install(clock: Clock) -> None:
    clock.wrap(_BaseDataLoaderIter, "__next__", "data loader")
    clock.wrap(torch.Tensor, "backward", "backward")
    # torch.optim hides its submodules' names; the module itself is in sys.modules
    clock.wrap(importlib.import_module("torch.optim.adam"), "_single_tensor_adam", "Adam update")
    clock.wrap(torch.optim.Optimizer, "zero_grad", "zero_grad")
    clock.wrap(LRScheduler, "step", "scheduler step")
    clock.wrap(lightning_call, "_call_callback_hooks", CALLBACKS)


class Steps(Callback):
    """Switches the clock on for the training batches of every epoch but the first, times each
    other callback's per-step hooks, and counts the steps."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.steps, self.seconds = clock, 0, 0.0
        self._start = 0.0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        task = pl_module
        self.clock.wrap(task, "forward", "forward")
        self.clock.wrap(task, "loss", "loss")
        for callback in trainer.callbacks:
            if callback is self:
                continue
            for hook in PER_STEP_HOOKS:
                function = getattr(callback, hook)
                if callable(function):  # None: an idle hook, out of the dispatch (idle_hooks.py)
                    label = f"  {type(callback).__name__}.{hook}"
                    setattr(callback, hook, self.clock.timed(function, label))

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch > 0:
            self.clock.on, self._start = True, time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        self.steps += self.clock.on
        if self.clock.on and args[-1] == trainer.num_training_batches - 1:
            self.clock.on = False
            self.seconds += time.perf_counter() - self._start


def mlcycle_round(
    clock: Clock, config: str, epochs: int, extra: tuple[str, ...] = ()
) -> tuple[dict[str, float], Any]:
    clock.seconds.clear()
    steps = Steps(clock)
    with tempfile.TemporaryDirectory() as tmp:
        cli = fit(
            [
                *("--config", config, f"--trainer.max_epochs={epochs}"),
                *(f"--run_dir={Path(tmp) / 'r'}", *extra),
            ],
            callbacks=[steps],
        )
    return per_step(clock, steps.seconds, steps.steps), cli


def grad_norm(every: int | None) -> tuple[str, ...]:
    """train.py's argument for a GradNorm taking the norm every ``every`` steps (none: the
    run's default); a run's own GradNorm replaces the default one."""
    if every is None:
        return ()
    own = {"class_path": "mlcycle.callbacks.GradNorm", "init_args": {"every": every}}
    return (f"--trainer.callbacks+={json.dumps(own)}",)


def plain_round(clock: Clock, cli: Any, epochs: int) -> dict[str, float]:
    clock.seconds.clear()
    dm, hp = cli.datamodule, cli.model.hparams
    loader = dm.train_dataloader()
    model = build_model(hp.arch, dm.in_channels, dm.num_classes)
    forward = clock.timed(model, "forward")
    loss_of = clock.timed(torch.nn.functional.cross_entropy, "loss")
    optimizer = getattr(torch.optim, hp.optimizer)(
        model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay
    )
    scheduler = schedule(optimizer, hp.scheduler, total_steps=epochs * len(loader), warmup_steps=0)
    steps, seconds = 0, 0.0
    for epoch in range(epochs):
        model.train()
        clock.on, start = epoch > 0, time.perf_counter()
        for x, y, _ in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(forward(x), y, label_smoothing=hp.label_smoothing)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            steps += clock.on
        if clock.on:
            seconds += time.perf_counter() - start
        clock.on = False
    return per_step(clock, seconds, steps)


def per_step(clock: Clock, seconds: float, steps: int) -> dict[str, float]:
    ms = {label: 1000 * s / steps for label, s in clock.seconds.items()}
    timed = sum(v for label, v in ms.items() if not label.startswith("  "))
    ms["step"] = 1000 * seconds / steps
    ms["the rest (the loop itself)"] = ms["step"] - timed
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help="figures in the figure worker")
    parser.add_argument(
        "--grad-norm-every", type=int, help="GradNorm's sampling (default: the run's, 8; 1: all)"
    )
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    clock = Clock()
    install(clock)
    ours, plain = [], []
    for _ in range(args.rounds):  # alternate, so a noisy neighbour hits both sides alike
        ms, cli = mlcycle_round(clock, args.config, args.epochs, grad_norm(args.grad_norm_every))
        ours.append(ms)
        plain.append(plain_round(clock, cli, args.epochs))

    def median(rounds: list[dict[str, float]], label: str) -> float:
        return statistics.median(r.get(label, 0.0) for r in rounds)

    order = ["data loader", "forward", "loss", "backward", "Adam update", "zero_grad"]
    order += ["scheduler step", CALLBACKS]
    hooks = sorted(
        {label for r in ours for label in r if label.startswith("  ")},
        key=lambda label: -median(ours, label),
    )
    print(f"\nms per training step, median of {args.rounds} rounds ({args.epochs - 1} epochs each)")
    print(f"{'part':<46}{'mlcycle':>9}{'plain':>9}")
    named = sum(median(ours, label) for label in hooks)
    rows = [(label, median(ours, label), median(plain, label)) for label in order]
    rows += [(label, median(ours, label), 0.0) for label in hooks[:8]]
    rows.append(("  (Lightning calling the callbacks)", median(ours, CALLBACKS) - named, 0.0))
    for label in ("the rest (the loop itself)", "step"):
        rows.append((label, median(ours, label), median(plain, label)))
    for label, mine, theirs in rows:
        print(f"{label:<46}{mine:>9.3f}{theirs:>9.3f}")
    print(f"ratio mlcycle / plain: {median(ours, 'step') / median(plain, 'step'):.3f}")
    rest = "the rest (the loop itself)"
    fixed = median(ours, CALLBACKS) + median(ours, rest) - median(plain, rest)
    print(
        f"fixed per-step cost (the callbacks, and the loop beyond the plain one's): "
        f"{fixed:.3f} ms (target < 1.5 ms)"
    )


if __name__ == "__main__":
    main()
