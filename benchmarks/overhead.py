#!/usr/bin/env python
"""Seconds per training epoch: train.py's loop (Lightning, metrics, callbacks, logging) versus a
plain hand-written PyTorch loop on the same model, data loader, batch size, optimizer and threads.

    python benchmarks/overhead.py [--epochs 6] [--config configs/quickstart.yaml]

Both sides train the quick-start model on the digits, in alternating rounds; the first epoch of
each round is warm-up and left out. Prints the median seconds per epoch (best round) of each
and their ratio (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback

from mlcycle.commands.train_cli import MLCycleCLI
from mlcycle.models import build_model
from mlcycle.tasks.optim import SCHEDULERS


class TrainBatchTimer(Callback):
    """Wall time from the start of each epoch to its last training batch (validation excluded)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            self.seconds.append(time.perf_counter() - self.start)


def lightning_epochs(config: str, epochs: int, run_dir: Path) -> tuple[list[float], dict]:
    cli = MLCycleCLI(["--config", config, f"--trainer.max_epochs={epochs}", f"--run_dir={run_dir}"])
    timer = TrainBatchTimer()
    cli.trainer.callbacks.append(timer)
    cli.datamodule.write_records(run_dir)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    setup = {
        "arch": cli.model.hparams.arch,
        "batch_size": cli.datamodule.hparams.batch_size,
        "lr": cli.model.hparams.lr,
        "steps_per_epoch": cli.trainer.num_training_batches,
        "datamodule": cli.datamodule,
        "hparams": cli.model.hparams,
    }
    return timer.seconds, setup


def plain_epochs(setup: dict, epochs: int) -> list[float]:
    torch.manual_seed(0)
    dm, hp = setup["datamodule"], setup["hparams"]
    loader = dm.train_dataloader()
    model = build_model(hp.arch, dm.in_channels, dm.num_classes)
    optimizer = getattr(torch.optim, hp.optimizer)(
        model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay
    )
    build = SCHEDULERS[hp.scheduler]
    scheduler = (
        build(optimizer, total_steps=epochs * len(loader), warmup_steps=0) if build else None
    )
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y, _ in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(
                model(x), y, label_smoothing=hp.label_smoothing
            )
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds; the fastest counts"
    )
    args = parser.parse_args()
    ours, plain = [], []
    for _ in range(args.rounds):  # alternate, so a noisy neighbour hits both sides alike
        with tempfile.TemporaryDirectory() as tmp:
            seconds, setup = lightning_epochs(args.config, args.epochs, Path(tmp) / "run")
        ours.append(seconds)
        plain.append(plain_epochs(setup, args.epochs))
    # Median over epochs (the first is warm-up), then the best round.
    ours_s = min(statistics.median(r[1:]) for r in ours)
    plain_s = min(statistics.median(r[1:]) for r in plain)
    print()
    print(
        f"model {setup['arch']}, batch {setup['batch_size']}, {setup['steps_per_epoch']} steps/epoch, "
        f"{torch.get_num_threads()} threads, {args.epochs} epochs x {args.rounds} rounds"
    )
    print(f"{'loop':<20}{'s/epoch':>10}   epochs of each round")
    for name, value, rounds in (
        ("plain PyTorch", plain_s, plain),
        ("mlcycle train.py", ours_s, ours),
    ):
        detail = " | ".join(" ".join(f"{s:.2f}" for s in r) for r in rounds)
        print(f"{name:<20}{value:>10.3f}   {detail}")
    print(f"ratio mlcycle / plain: {ours_s / plain_s:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
