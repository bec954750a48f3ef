"""Per-batch callback hooks that do nothing are out of Lightning's dispatch; the others run."""

from __future__ import annotations

import csv

import torch
from conftest import train_args
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.profilers import SimpleProfiler
from test_callbacks_grad_norm import Line
from torch.utils.data import DataLoader, TensorDataset

from mlcycle.callbacks.idle_hooks import BATCH_HOOKS, QuietProfiler, SkipIdleHooks
from mlcycle.training.fit import fit

TRAIN_STEP_HOOKS = BATCH_HOOKS[:6]


class Counting(Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1


class Idle(Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:  # no per-batch hook
        pass


def busy_hooks(callbacks: list[Callback]) -> set[str]:
    return {
        f"{type(c).__name__}.{hook}"
        for c in callbacks
        for hook in TRAIN_STEP_HOOKS
        if callable(getattr(c, hook))
    }


def test_idle_hooks_leave_the_dispatch_and_busy_ones_still_run(tmp_path):
    counting, idle = Counting(), Idle()
    per_step = ModelCheckpoint(dirpath=tmp_path / "steps", every_n_train_steps=1, save_top_k=-1)
    per_epoch = ModelCheckpoint(dirpath=tmp_path / "epochs")
    lr_epoch, lr_step = (LearningRateMonitor(logging_interval=i) for i in ("epoch", "step"))
    trainer = Trainer(
        max_epochs=2,
        callbacks=[counting, idle, per_step, per_epoch, lr_epoch, lr_step, SkipIdleHooks()],
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="log", version=""),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Line(), DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4))

    assert counting.batches == 6  # its hook still runs every batch
    assert all(getattr(idle, hook) is None for hook in BATCH_HOOKS)
    assert per_epoch.on_train_batch_end is None and callable(per_step.on_train_batch_end)
    assert len(list((tmp_path / "steps").glob("*.ckpt"))) == 6  # saved at every step
    assert lr_epoch.on_train_batch_start is None and callable(lr_step.on_train_batch_start)
    with open(tmp_path / "log" / "metrics.csv") as f:
        logged = [row for row in csv.DictReader(f) if row.get("lr-SGD")]
    assert len(logged) >= 6  # the per-step monitor still logs each step


def test_a_train_run_calls_only_the_hooks_that_work_each_step(image_folder, tmp_path):
    counting = Counting()
    cli = fit(train_args(image_folder, tmp_path / "run"), callbacks=[counting])
    assert counting.batches > 0
    assert busy_hooks(cli.trainer.callbacks) == {
        "GradNorm.on_before_optimizer_step",
        "FiniteLossGuard.on_train_batch_end",
        "Counting.on_train_batch_end",
    }
    assert isinstance(cli.trainer.profiler, QuietProfiler)  # none asked for


def test_a_profiler_asked_for_is_kept(image_folder, tmp_path):
    cli = fit(train_args(image_folder, tmp_path / "run", "--trainer.profiler=simple"))
    assert isinstance(cli.trainer.profiler, SimpleProfiler)
    assert "on_train_batch_end" in cli.trainer.profiler.summary()
