#!/usr/bin/env python
"""Seconds per training epoch: train.py's loop (Lightning, metrics, callbacks, logging) versus a
plain hand-written PyTorch loop on the same model, data loader, batch size, optimizer and threads.

    python benchmarks/overhead.py [--epochs 6] [--config configs/quickstart.yaml]

Both sides train the quick-start model on the digits; the first epoch of each is warm-up and
is left out. Prints the median seconds per epoch of each and their ratio (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback

from mlcycle.cli import MLCycleCLI
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours, setup = lightning_epochs(args.config, args.epochs, Path(tmp) / "run")
    plain = plain_epochs(setup, args.epochs)
    ours_s, plain_s = statistics.median(ours[1:]), statistics.median(plain[1:])
    print()
    print(
        f"model {setup['arch']}, batch {setup['batch_size']}, {setup['steps_per_epoch']} steps/epoch, "
        f"{torch.get_num_threads()} threads, {args.epochs} epochs (first left out)"
    )
    print(f"{'loop':<28}{'s/epoch (median)':>18}{'all epochs':>40}")
    print(f"{'plain PyTorch':<28}{plain_s:>18.3f}{' '.join(f'{s:.3f}' for s in plain):>40}")
    print(f"{'mlcycle train.py':<28}{ours_s:>18.3f}{' '.join(f'{s:.3f}' for s in ours):>40}")
    print(f"ratio mlcycle / plain: {ours_s / plain_s:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
