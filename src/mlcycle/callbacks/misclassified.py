"""The most confident validation mistakes of the best epoch: TensorBoard and ``misclassified.png``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from matplotlib.figure import Figure

from mlcycle.callbacks.predictions import BestEpochPredictions
from mlcycle.reports.figure_worker import draw_later
from mlcycle.reports.figures import gallery_figure
from mlcycle.reports.mistakes import Mistake, top_mistakes


def mistake_inputs(
    datamodule: Any, mistakes: list[Mistake], class_names: list[str], title: str
) -> dict[str, Any]:
    """The arguments of ``gallery_figure`` for ``mistakes`` (images read from the data)."""
    images = [datamodule.raw_image(m.position) for m in mistakes]
    captions = [
        f"true {class_names[m.true]}\npred {class_names[m.predicted]} ({m.confidence:.0%})"
        for m in mistakes
    ]
    return {"images": images, "captions": captions, "title": title}


def mistake_gallery(
    datamodule: Any, mistakes: list[Mistake], class_names: list[str], title: str
) -> Figure:
    return gallery_figure(**mistake_inputs(datamodule, mistakes, class_names, title))


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
        inputs = mistake_inputs(trainer.datamodule, mistakes, pl_module.class_names, title)
        draw_later(trainer, "misclassified.png", gallery_figure, inputs, tag="val/misclassified")
