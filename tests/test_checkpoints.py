"""best.ckpt and last.ckpt: one serialization when both are due, two files that stay right."""

from __future__ import annotations

import os

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from mlcycle.training.cli import standard_callbacks

SCORES = [1.0, 2.0, 2.0, 0.5, 3.0]  # improves at epochs 0, 1 and 4 only


class Scored(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("score", SCORES[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Inspect(Callback):
    """After each epoch's checkpoints: is last.ckpt best.ckpt's file, and which epochs they hold."""

    def __init__(self, folder) -> None:
        self.folder, self.seen = folder, []

    def _look(self) -> None:
        best, last = self.folder / "best.ckpt", self.folder / "last.ckpt"
        epochs = [torch.load(p, weights_only=True)["epoch"] for p in (best, last)]
        self.seen.append((os.path.samefile(best, last), *epochs))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._look()

    def on_fit_end(self, trainer, pl_module) -> None:
        self._look()


def fit(tmp_path, epochs: int, ckpt_path: str | None = None) -> Inspect:
    data = TensorDataset(torch.randn(8, 2))
    loader = DataLoader(data, batch_size=4)
    inspect = Inspect(tmp_path / "checkpoints")
    trainer = Trainer(
        max_epochs=epochs,
        callbacks=[*standard_callbacks(tmp_path, "score", "max")[:2], inspect],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(Scored(), loader, loader, ckpt_path=ckpt_path)
    return inspect


def test_last_is_a_link_to_best_only_when_both_were_written_at_that_epoch(tmp_path):
    seen = fit(tmp_path, epochs=5).seen
    # (same file, best's epoch, last's epoch) after epochs 0..4
    assert seen == [(True, 0, 0), (True, 1, 1), (False, 1, 2), (False, 1, 3), (True, 4, 4)]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_resume_from_a_linked_last_checkpoint_keeps_the_best_score(tmp_path):
    fit(tmp_path, epochs=2)  # ends on an improvement: last.ckpt is best.ckpt's file
    seen = fit(tmp_path, epochs=4, ckpt_path=str(tmp_path / "checkpoints/last.ckpt")).seen
    # Restored at epoch 2's start; 2.0 at epoch 2 does not beat the restored best (2.0), so
    # best.ckpt stays epoch 1's and last.ckpt moves on.
    assert seen == [(True, 1, 1), (False, 1, 2), (False, 1, 3)]
    state = torch.load(tmp_path / "checkpoints/best.ckpt", weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 4
