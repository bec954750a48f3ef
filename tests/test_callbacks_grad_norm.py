"""GradNorm's per-step value reaches the logger at its cadence, with the norm of that step."""

from __future__ import annotations

import csv

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from mlcycle.callbacks import GradNorm


class Line(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Norms(Callback):
    def __init__(self) -> None:
        self.by_step: dict[int, float] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad.flatten() for p in pl_module.parameters()]
        self.by_step[trainer.global_step] = float(torch.cat(grads).norm())


def test_each_logged_step_holds_the_norm_of_that_step(tmp_path):
    norms = Norms()
    trainer = Trainer(
        max_epochs=2,
        callbacks=[GradNorm(), norms],
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="log", version=""),
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Line(), DataLoader(TensorDataset(torch.randn(24, 2)), batch_size=4))
    with open(tmp_path / "log" / "metrics.csv") as f:
        logged = {
            int(r["step"]): float(r["train/grad_norm"])
            for r in csv.DictReader(f)
            if r["train/grad_norm"]
        }
    assert sorted(logged) == [1, 3, 5, 7, 9, 11]  # every 2nd of 12 steps, as the logger writes
    for step, value in logged.items():
        assert value == pytest.approx(norms.by_step[step], rel=1e-5)
