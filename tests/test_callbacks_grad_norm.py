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


def fit_line(tmp_path, grad_norm: GradNorm, log_every: int) -> tuple[Norms, list[dict]]:
    """Two epochs of six steps; the norms of every step, and the CSV logger's rows."""
    norms = Norms()
    trainer = Trainer(
        max_epochs=2,
        callbacks=[grad_norm, norms],
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="log", version=""),
        log_every_n_steps=log_every,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Line(), DataLoader(TensorDataset(torch.randn(24, 2)), batch_size=4))
    with open(tmp_path / "log" / "metrics.csv") as f:
        return norms, list(csv.DictReader(f))


def test_each_logged_step_holds_the_norm_of_that_step(tmp_path):
    norms, rows = fit_line(tmp_path, GradNorm(), log_every=2)
    logged = {int(r["step"]): float(r["train/grad_norm"]) for r in rows if r["train/grad_norm"]}
    assert sorted(logged) == [1, 3, 5, 7, 9, 11]  # every 2nd of 12 steps, as the logger writes
    for step, value in logged.items():
        assert value == pytest.approx(norms.by_step[step], rel=1e-5)


def epoch_figures(tmp_path, grad_norm: GradNorm) -> tuple[Norms, list[dict[str, float]]]:
    norms, rows = fit_line(tmp_path, grad_norm, log_every=5)
    rows = [r for r in rows if r["train/grad_norm_mean"]]
    return norms, [{k: float(v) for k, v in r.items() if v} for r in rows]


@pytest.mark.parametrize(
    "every, taken",
    [(4, [[0, 4], [6, 8, 9]]), (1, [list(range(6)), list(range(6, 12))])],
    ids=["every-4", "every-step"],
)
def test_epoch_mean_and_max_are_over_the_steps_taken(tmp_path, every, taken):
    """Six steps an epoch, the logger writing steps 4 and 9: with every=4 the norms are taken at
    each epoch's first step, every 4th step and the logged ones."""
    norms, rows = epoch_figures(tmp_path, GradNorm(every=every))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for row, steps in zip(rows, taken, strict=True):
        values = [norms.by_step[s] for s in steps]
        assert row["train/grad_norm_mean"] == pytest.approx(sum(values) / len(values), rel=1e-5)
        assert row["train/grad_norm_max"] == pytest.approx(max(values), rel=1e-5)


def test_a_step_count_below_one_is_refused():
    with pytest.raises(ValueError, match="every=0"):
        GradNorm(every=0)


def test_a_runs_own_grad_norm_replaces_the_default(image_folder, tmp_path):
    from conftest import train_args

    from mlcycle.training.fit import fit

    own = '{"class_path": "mlcycle.callbacks.GradNorm", "init_args": {"every": 1}}'
    cli = fit(train_args(image_folder, tmp_path / "run", f"--trainer.callbacks+={own}"))
    kept = [c for c in cli.trainer.callbacks if isinstance(c, GradNorm)]
    assert [c.every for c in kept] == [1]
