"""Train and val loss and error per epoch: shared TensorBoard charts, ``loss_curves.png``, CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from mlcycle.callbacks.figures_done import FinishesFigures
from mlcycle.reports import figure_worker
from mlcycle.reports.figures import curves_figure

CURVES = ("train/loss", "val/loss", "train/error", "val/error")


class LossCurves(FinishesFigures):
    """Records every epoch's metrics in ``history.csv`` and draws train beside val in
    ``loss_curves.png`` (off the training path, see ``mlcycle.reports.figure_worker``).

    TensorBoard gets a "curves" tab (custom scalars) with one chart for loss and one for error,
    train and val on the same axes.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.fallback: tuple[str, ...] = ()  # the task's epoch metrics, drawn when no error
        self._layout_written = False

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        if "train/acc" in metrics:
            metrics["train/error"] = 1.0 - metrics["train/acc"]
        self.fallback = tuple(getattr(pl_module, "epoch_metrics", ()))
        row = {"epoch": trainer.current_epoch + 1, **metrics}  # epochs completed, 1-based
        self.history = [r for r in self.history if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            self._to_tensorboard(trainer, row)
            self._write(Path(trainer.default_root_dir))
            inputs = {"history": list(self.history), "fallback": self.fallback}
            figure_worker.draw_later(trainer, "loss_curves.png", curves_figure, inputs)

    def _to_tensorboard(self, trainer: Trainer, row: dict[str, float]) -> None:
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                continue
            writer = logger.experiment
            if not self._layout_written:
                layout = {
                    name: ["Multiline", [f"curves/train_{name}", f"curves/val_{name}"]]
                    for name in ("loss", "error")
                }
                writer.add_custom_scalars({"curves (train vs val)": layout})
                self._layout_written = True
            for key in CURVES:
                if key in row:
                    stage, name = key.split("/")
                    writer.add_scalar(
                        f"curves/{stage}_{name}", row[key], global_step=int(row["epoch"])
                    )

    def _write(self, run_dir: Path) -> None:
        columns = sorted({k for r in self.history for k in r} - {"epoch"})
        with (run_dir / "history.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["epoch", *columns])
            writer.writeheader()
            writer.writerows(self.history)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
