"""Training metric updates queued and applied together give the epoch the same values."""

from __future__ import annotations

import pytest
import torch
from conftest import train_args
from lightning.pytorch import Callback
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mlcycle.tasks.deferred import DeferredUpdates
from mlcycle.training.fit import fit


def test_queued_updates_add_what_step_by_step_updates_add():
    torch.manual_seed(0)
    steps = [(torch.rand(()), torch.randn(5, 4), torch.randint(0, 4, (5,))) for _ in range(10)]
    loss, acc = MeanMetric(), MulticlassAccuracy(4, average="micro")
    queued_loss, queued_acc = MeanMetric(), MulticlassAccuracy(4, average="micro")
    deferred = DeferredUpdates(every=3)
    for value, logits, target in steps:
        loss.update(value)
        acc.update(logits, target)
        deferred.add(queued_loss, value)
        deferred.add(queued_acc, logits.argmax(1), target)
    seen = queued_acc.tp + queued_acc.fn  # samples counted (micro average)
    assert seen.sum() == 45  # applied three at a time: nine steps of 5, one step still queued
    deferred.flush()
    assert torch.equal(queued_acc.tp, acc.tp) and torch.equal(queued_acc.fp, acc.fp)
    assert queued_acc.compute() == acc.compute()
    assert queued_loss.compute().item() == pytest.approx(loss.compute().item(), rel=1e-6)


class EpochLoss(Callback):
    """Reads ``train/loss`` where the curves and the history read it, at the epoch's end."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.epochs: list[tuple[float, float, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        logged = float(trainer.callback_metrics["train/loss"])
        self.epochs.append((logged, sum(self.losses) / len(self.losses), len(self.losses)))
        self.losses = []


def test_the_epochs_train_loss_is_the_mean_of_its_steps(image_folder, tmp_path):
    full = EpochLoss()
    cli = fit(train_args(image_folder, tmp_path / "a", "--trainer.max_epochs=2"), callbacks=[full])
    batches = cli.trainer.num_training_batches
    assert [n for *_, n in full.epochs] == [batches, batches]
    for logged, mean, _ in full.epochs:
        assert logged == pytest.approx(mean, rel=1e-5)
    # max_steps ends the second epoch after one batch: its one loss is still counted
    partial = EpochLoss()
    args = train_args(image_folder, tmp_path / "b", "--trainer.max_epochs=3")
    fit([*args, f"--trainer.max_steps={batches + 1}"], callbacks=[partial])
    assert [n for *_, n in partial.epochs] == [batches, 1]
    assert partial.epochs[1][0] == pytest.approx(partial.epochs[1][1], rel=1e-5)
