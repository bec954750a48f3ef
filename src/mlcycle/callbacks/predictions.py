"""A base for callbacks that look at the validation predictions of the best epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from mlcycle.plots import save


class BestEpochPredictions(Callback):
    """Gathers validation ``probs``, ``target`` and ``index``; reports when ``monitor`` improves.

    Reports run in ``on_train_epoch_end``, after validation metrics are logged, so the PNG in
    the run directory always shows the epoch of ``checkpoints/best.ckpt``.
    """

    def __init__(self, monitor: str = "val/f1", mode: str = "max") -> None:
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self._parts: list[dict[str, torch.Tensor]] = []
        self._fresh = False

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._parts = []

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        *_: Any,
    ) -> None:
        if trainer.sanity_checking or not isinstance(outputs, dict) or "probs" not in outputs:
            return
        self._parts.append({k: outputs[k].detach().cpu() for k in ("probs", "target", "index")})
        self._fresh = True

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._fresh:
            return
        self._fresh = False
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if not better:
            return
        self.best = value
        gathered = {k: torch.cat([p[k] for p in self._parts]) for k in ("probs", "target", "index")}
        self.report(trainer, pl_module, gathered)

    def report(
        self, trainer: Trainer, pl_module: LightningModule, gathered: dict[str, torch.Tensor]
    ) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")


def publish(trainer: Trainer, fig: Figure, tag: str, filename: str) -> Path:
    """Send ``fig`` to TensorBoard (when used) and write it as a PNG in the run directory."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=trainer.current_epoch, close=False)
    path = Path(trainer.default_root_dir) / filename
    save(fig, path)
    return path
