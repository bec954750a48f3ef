#!/usr/bin/env python
"""Seconds per epoch: train.py (Lightning, metrics, callbacks, logging, checkpoints, figures)
versus a plain hand-written PyTorch loop on the same model, data loaders, batch size, optimizer,
scheduler, transforms and threads.

    python benchmarks/overhead.py [--epochs 5] [--rounds 5] [--config configs/quickstart.yaml]
                                  [--images 320] [--busy]

Both sides train the quick-start model on the digits, in alternating rounds; the first epoch of
each round is warm-up and left out. The figure worker (a process per Python process that draws
the PNGs at idle priority) is started and ready before the first round: its start-up, about
1.5 s of CPU once per process, would otherwise fall in the first round's epochs. Two
measurements, from the same runs:

* training batches: from the start of an epoch to the end of its last training batch
  (validation and epoch-end work excluded); target <= 1.05.
* whole epoch: from the start of an epoch to the start of the next (for the last epoch: to
  Lightning's ``on_train_end``), i.e. training batches + validation + everything done at the
  epoch's end; target <= 1.10. The mlcycle side runs ``mlcycle.training.fit.fit`` in-process
  (exactly train.py, with a timing callback added), so its epoch includes the best and last
  checkpoints, history.csv, loss_curves.png, the confusion matrix and mistake gallery (drawn when
  the monitored metric improves), TensorBoard and the epoch summary line. The sanity-check
  validation, the set-up before the first epoch and what runs after the fit (metrics.json) are
  outside every epoch. The plain side trains, then validates (loss and accuracy, no_grad) on the
  same validation loader; it saves nothing.

  Each whole epoch is split into ``train`` (the training batches, as above), ``val`` (Lightning's
  ``on_validation_start`` to ``on_validation_end``: the validation batches, the per-batch
  gathering of the galleries and the metrics' compute and logging; the checkpoints are saved
  after it) and ``rest`` (the remainder: checkpoints, curves, figures, logging, progress bar).

Prints, for each side, the median seconds per epoch over the rounds, and the ratio mlcycle /
plain: per round (mlcycle's round against the plain round run right after it, so that a
machine whose speed drifts over a minute hits both alike), and the median of those ratios.

A config that leaves ``data.root`` unset (``configs/image_folder.yaml``: resnet18 at 128 px,
batch 32) trains on ``--images`` generated random-texture JPEGs (4 classes, 160 px, written to a
temporary folder; nothing downloaded).

``--busy``: the busy machine. A one-core spinner process runs during every round, and train.py
runs on both sides, with ``--threads auto`` (the cores the spinner leaves free) and with
PyTorch's default threads (``--threads D``, D = this process's ``torch.get_num_threads()`` at
start: what a new user gets); prints the median seconds per whole epoch of each and the ratio
default / auto. Defaults there: 3 epochs x 2 rounds (a default-threads epoch can take 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from lightning.pytorch import Callback
from textures import write_images  # benchmarks/textures.py

from mlcycle.models import build_model
from mlcycle.reports import figure_worker
from mlcycle.tasks.optim import schedule
from mlcycle.training.fit import fit

PARTS = ("total", "train", "val", "rest")


class EpochTimer(Callback):
    """Per epoch: ``train`` (start to the last training batch's end), ``val`` (validation start to
    end, sanity check excluded), ``total`` (start to the next epoch's start, or to
    ``on_train_end``) and ``rest`` = total - train - val."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {p: [] for p in PARTS}
        self._start: float | None = None
        self._val_start = 0.0

    def _close(self, now: float) -> None:
        if self._start is None:
            return
        total = now - self._start
        self.seconds["total"].append(total)
        train = self.seconds["train"][-1]
        val = (
            self.seconds["val"][-1]
            if len(self.seconds["val"]) == len(self.seconds["train"])
            else 0.0
        )
        self.seconds["rest"].append(total - train - val)
        self._start = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        now = time.perf_counter()
        self._close(now)
        self._start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            self.seconds["train"].append(time.perf_counter() - self._start)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        # The checkpoints are saved after this (in on_train_epoch_end, checkpoint callbacks
        # last), so their saving falls in "rest", with the curves and figures.
        if not trainer.sanity_checking:
            self.seconds["val"].append(time.perf_counter() - self._val_start)

    def on_train_end(self, trainer, pl_module) -> None:
        self._close(time.perf_counter())


def lightning_epochs(
    config: str, epochs: int, run_dir: Path, extra: list[str]
) -> tuple[dict, dict]:
    timer = EpochTimer()
    cli = fit(
        ["--config", config, f"--trainer.max_epochs={epochs}", f"--run_dir={run_dir}", *extra],
        callbacks=[timer],
    )
    setup = {
        "threads": cli.config.get("threads"),
        "arch": cli.model.hparams.arch,
        "batch_size": cli.datamodule.hparams.batch_size,
        "lr": cli.model.hparams.lr,
        "steps_per_epoch": cli.trainer.num_training_batches,
        "val_steps": sum(cli.trainer.num_val_batches),
        "datamodule": cli.datamodule,
        "hparams": cli.model.hparams,
    }
    return timer.seconds, setup


def plain_epochs(setup: dict, epochs: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    dm, hp = setup["datamodule"], setup["hparams"]
    loader, val_loader = dm.train_dataloader(), dm.val_dataloader()
    model = build_model(hp.arch, dm.in_channels, dm.num_classes)
    optimizer = getattr(torch.optim, hp.optimizer)(
        model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay
    )
    scheduler = schedule(optimizer, hp.scheduler, total_steps=epochs * len(loader), warmup_steps=0)
    seconds: dict[str, list[float]] = {p: [] for p in PARTS}
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
        trained = time.perf_counter()
        model.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for x, y, _ in val_loader:
                logits = model(x)
                loss_sum += float(
                    torch.nn.functional.cross_entropy(
                        logits, y, label_smoothing=hp.label_smoothing, reduction="sum"
                    )
                )
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
        validated = time.perf_counter()
        _ = (loss_sum / seen, correct / seen)  # what a plain loop would print
        seconds["train"].append(trained - start)
        seconds["val"].append(validated - trained)
        seconds["total"].append(validated - start)
        seconds["rest"].append(0.0)
    return seconds


def round_medians(rounds: list[dict[str, list[float]]]) -> list[dict[str, float]]:
    """Per round, the median over its epochs (the first is warm-up) of every part."""
    return [{p: statistics.median(r[p][1:]) for p in PARTS} for r in rounds]


def paired(ours: list[dict], plain: list[dict], part: str) -> tuple[float, list[float]]:
    """The median over rounds of mlcycle's round / the plain round run right after it, and
    those ratios: a machine that drifts over a minute hits both halves of a pair alike."""
    ratios = [o[part] / p[part] for o, p in zip(ours, plain, strict=True)]
    return statistics.median(ratios), ratios


def data_arguments(config: str, folder: Path, images: int) -> list[str]:
    """``--data.root`` on generated images when the config leaves it unset, else nothing."""
    init_args = (yaml.safe_load(Path(config).read_text()).get("data") or {}).get("init_args", {})
    if "root" not in init_args or init_args["root"] is not None:
        return []
    write_images(folder, images, size=160, classes=4)
    return [f"--data.root={folder}"]


def start_spinner() -> subprocess.Popen:
    """Another job on one core: a Python loop that never sleeps."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def busy(args: argparse.Namespace, extra: list[str]) -> None:
    """``--threads auto`` against PyTorch's default threads, a one-core spinner beside both."""
    default = torch.get_num_threads()
    sides: dict[str, list[dict]] = {"auto": [], str(default): []}
    chosen = []
    spinner = start_spinner()
    try:
        time.sleep(1.0)  # spinning before the first measurement
        for _ in range(args.rounds):
            for threads, rounds in sides.items():
                with tempfile.TemporaryDirectory() as tmp:
                    run_extra = [*extra, f"--threads={threads}"]
                    seconds, setup = lightning_epochs(
                        args.config, args.epochs, Path(tmp) / "run", run_extra
                    )
                rounds.append(seconds)
                if threads == "auto":
                    chosen.append(setup["threads"])
    finally:
        spinner.kill()
        spinner.wait()
    auto_m, default_m = round_medians(sides["auto"]), round_medians(sides[str(default)])
    print(
        f"\nbusy machine: a one-core spinner beside training; model {setup['arch']}, batch "
        f"{setup['batch_size']}, {setup['steps_per_epoch']} train + {setup['val_steps']} val "
        f"steps/epoch, {args.epochs} epochs x {args.rounds} rounds (first epoch left out)"
    )
    print(f"{'train.py':<34}{'s/epoch':>10}   epochs of each round")
    for name, rounds, medians in (
        (f"--threads auto (chose {', '.join(map(str, chosen))})", sides["auto"], auto_m),
        (f"PyTorch's default ({default} threads)", sides[str(default)], default_m),
    ):
        value = statistics.median(m["total"] for m in medians)
        detail = " | ".join(" ".join(f"{s:.2f}" for s in r["total"]) for r in rounds)
        print(f"{name:<34}{value:>10.3f}   {detail}")
    ratio, ratios = paired(default_m, auto_m, "total")
    print(f"ratio per round: {' '.join(f'{r:.2f}' for r in ratios)}")
    print(f"ratio default / auto: {ratio:.2f}  (median; how much slower the default threads are)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=None, help="default 5 (--busy: 3)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds (default 5, --busy: 2)"
    )
    parser.add_argument(
        "--images", type=int, default=320, help="generated images when the config has no root"
    )
    parser.add_argument("--busy", action="store_true", help="a one-core spinner beside training")
    args = parser.parse_args()
    args.epochs = args.epochs or (3 if args.busy else 5)
    args.rounds = args.rounds or (2 if args.busy else 5)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    figure_worker.start(wait_s=60)
    with tempfile.TemporaryDirectory() as images:
        extra = data_arguments(args.config, Path(images) / "images", args.images)
        if args.busy:
            busy(args, extra)
            return
        compare(args, extra)


def compare(args: argparse.Namespace, extra: list[str]) -> None:
    """train.py against the plain loop, in alternating rounds; prints both measurements."""
    ours, plain = [], []
    for _ in range(args.rounds):  # alternate, so a noisy neighbour hits both sides alike
        with tempfile.TemporaryDirectory() as tmp:
            seconds, setup = lightning_epochs(args.config, args.epochs, Path(tmp) / "run", extra)
        ours.append(seconds)
        plain.append(plain_epochs(setup, args.epochs))
    print()
    print(
        f"model {setup['arch']}, batch {setup['batch_size']}, {setup['steps_per_epoch']} train + "
        f"{setup['val_steps']} val steps/epoch, {torch.get_num_threads()} threads, "
        f"{args.epochs} epochs x {args.rounds} rounds (first epoch of each round left out)"
    )

    ours_m, plain_m = round_medians(ours), round_medians(plain)
    sides = (("plain PyTorch", plain, plain_m), ("mlcycle train.py", ours, ours_m))

    print("\ntraining batches (epoch start to its last training batch)")
    print(f"{'loop':<20}{'s/epoch':>10}   epochs of each round")
    for name, rounds, medians in sides:
        value = statistics.median(m["train"] for m in medians)
        detail = " | ".join(" ".join(f"{s:.2f}" for s in r["train"]) for r in rounds)
        print(f"{name:<20}{value:>10.3f}   {detail}")
    ratio, ratios = paired(ours_m, plain_m, "train")
    print(f"ratio per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"ratio mlcycle / plain: {ratio:.3f}  (median; target <= 1.05)")

    print(
        "\nwhole epoch (training batches + validation + epoch-end work: checkpoints, figures, logs)"
    )
    print(f"{'loop':<20}{'s/epoch':>10}{'train':>8}{'val':>8}{'rest':>8}   epochs of each round")
    for name, rounds, medians in sides:
        value = {p: statistics.median(m[p] for m in medians) for p in PARTS}
        detail = " | ".join(" ".join(f"{s:.2f}" for s in r["total"]) for r in rounds)
        print(
            f"{name:<20}{value['total']:>10.3f}{value['train']:>8.3f}{value['val']:>8.3f}"
            f"{value['rest']:>8.3f}   {detail}"
        )
    ratio, ratios = paired(ours_m, plain_m, "total")
    print(f"ratio per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"ratio mlcycle / plain: {ratio:.3f}  (median; target <= 1.10)")
    print("(s/epoch, train, val, rest: medians over the rounds of each round's epoch median)")


if __name__ == "__main__":
    main()
