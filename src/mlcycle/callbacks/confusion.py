"""The validation confusion matrix of the best epoch: TensorBoard and ``confusion_matrix.png``."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from mlcycle.callbacks.predictions import BestEpochPredictions
from mlcycle.reports.figure_worker import draw_later
from mlcycle.reports.figures import confusion_matrix_figure
from mlcycle.reports.mistakes import confusion_matrix


class ConfusionMatrix(BestEpochPredictions):
    def report(
        self, trainer: Trainer, pl_module: LightningModule, gathered: dict[str, torch.Tensor]
    ) -> None:
        names = pl_module.class_names
        matrix = confusion_matrix(gathered["probs"], gathered["target"], len(names))
        title = f"validation confusion matrix, epoch {trainer.current_epoch + 1} ({self.monitor} {self.best:.4f})"
        inputs = {"matrix": matrix, "class_names": list(names), "title": title}
        draw_later(
            trainer,
            "confusion_matrix.png",
            confusion_matrix_figure,
            inputs,
            tag="val/confusion_matrix",
        )
