"""Reports of a table model's validation predictions at its best epoch: the worst predictions
as a table (``worst_predictions.csv`` and TensorBoard text) and, for regression, a residual
plot (``residuals.png``). Classification reuses the image tasks' confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from mlcycle.callbacks.best_epoch import BestEpochReport
from mlcycle.reports.figure_worker import draw_later
from mlcycle.reports.residuals import residual_figure
from mlcycle.tables.rows import markdown, worst_table

TEXT_ROWS = 10  # rows of the worst-predictions table shown in TensorBoard


class _Gathered(BestEpochReport):
    """Keeps each validation batch's ``probs``/``pred``, ``target`` and ``index``."""

    def __init__(self, monitor: str, mode: str) -> None:
        super().__init__(monitor, mode)
        self._parts: list[dict[str, torch.Tensor]] = []

    def start(self) -> None:
        self._parts = []

    def gather(self, pl_module: LightningModule, outputs: dict[str, Any]) -> bool:
        key = "pred" if "pred" in outputs else "probs"
        if key not in outputs:
            return False
        self._parts.append(
            {
                "scores": outputs[key].detach().float().cpu(),
                "target": outputs["target"].detach().cpu(),
                "index": outputs["index"].detach().cpu(),
            }
        )
        return True

    def gathered(self) -> dict[str, np.ndarray]:
        return {k: torch.cat([p[k] for p in self._parts]).numpy() for k in self._parts[0]}


class WorstRows(_Gathered):
    """The ``limit`` validation rows the model got most wrong (classification: the lowest
    probability of the true class; regression: the largest absolute error), with their raw
    columns, in ``worst_predictions.csv``; the first rows also go to TensorBoard as text."""

    def __init__(self, limit: int = 25, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(monitor, mode)
        self.limit = limit

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        got = self.gathered()
        table = worst_table(
            getattr(trainer, "datamodule", None),
            "val",
            got["scores"],
            got["target"],
            got["index"],
            list(getattr(pl_module, "class_names", []) or []),
            self.limit,
        )
        if not trainer.is_global_zero:
            return
        table.to_csv(Path(trainer.default_root_dir) / "worst_predictions.csv", index=False)
        text = (
            f"epoch {trainer.current_epoch + 1} ({self.monitor} {self.best:.4f}); "
            f"all {len(table)} rows in worst_predictions.csv\n\n" + markdown(table.head(TEXT_ROWS))
        )
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text(
                    "val/worst_predictions", text, global_step=trainer.current_epoch
                )


class Residuals(_Gathered):
    """Regression: predicted against actual and residuals against predicted (``residuals.png``
    and TensorBoard)."""

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        got = self.gathered()
        title = f"validation, epoch {trainer.current_epoch + 1} ({self.monitor} {self.best:.4f})"
        kwargs = {"predicted": got["scores"], "actual": got["target"].astype(float), "title": title}
        draw_later(trainer, "residuals.png", residual_figure, kwargs, tag="val/residuals")
