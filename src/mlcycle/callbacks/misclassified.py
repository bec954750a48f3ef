"""The most confident validation mistakes of the best epoch: TensorBoard and ``misclassified.png``."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from mlcycle.callbacks.predictions import BestEpochPredictions, publish
from mlcycle.reports.figures import gallery_figure
from mlcycle.reports.mistakes import top_mistakes


def mistake_gallery(datamodule, mistakes, class_names, title):
    images = [datamodule.raw_image(m.position) for m in mistakes]
    captions = [
        f"true {class_names[m.true]}\npred {class_names[m.predicted]} ({m.confidence:.0%})"
        for m in mistakes
    ]
    return gallery_figure(images, captions, title)


class Misclassified(BestEpochPredictions):
    """Args: limit: how many mistakes the grid shows (most confident first)."""

    def __init__(self, limit: int = 24, monitor: str = "val/f1", mode: str = "max") -> None:
        super().__init__(monitor, mode)
        self.limit = limit

    def report(
        self, trainer: Trainer, pl_module: LightningModule, gathered: dict[str, torch.Tensor]
    ) -> None:
        mistakes = top_mistakes(
            gathered["probs"], gathered["target"], gathered["index"], self.limit
        )
        total = int((gathered["probs"].argmax(1) != gathered["target"]).sum())
        title = f"most confident validation mistakes ({len(mistakes)} of {total}), epoch {trainer.current_epoch + 1}"
        fig = mistake_gallery(trainer.datamodule, mistakes, pl_module.class_names, title)
        publish(trainer, fig, "val/misclassified", "misclassified.png")
