"""The validation images with the worst IoU, true and predicted masks: ``worst_iou.png``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from matplotlib.figure import Figure

from mlcycle.callbacks.predictions import publish
from mlcycle.callbacks.worst_examples import BestEpochWorst
from mlcycle.reports.mask_box_errors import Worst
from mlcycle.reports.mask_box_galleries import mask_gallery_figure


def worst_iou_figure(
    data: Any, examples: list[dict[str, Any]], class_names: list[str], ignore_index: int, title: str
) -> Figure:
    """``examples``: ``{"position", "iou", "pred"}`` rows; images and true masks from ``data``."""
    pairs = [data.raw_pair(e["position"]) for e in examples]
    return mask_gallery_figure(
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        [e["pred"].numpy() for e in examples],
        [f"#{e['position']}  IoU {e['iou']:.2f}" for e in examples],
        class_names,
        title,
        ignore_index,
    )


class SegmentationGallery(BestEpochWorst):
    """Args: limit: how many images the gallery shows (worst IoU first)."""

    def __init__(self, limit: int = 12, monitor: str = "val/iou", mode: str = "max") -> None:
        super().__init__(limit, monitor, mode)

    def collect(self, pl_module: LightningModule, outputs: dict[str, Any], worst: Worst) -> None:
        preds, ious = outputs["pred"].cpu(), outputs["iou"].cpu()
        for pred, iou, position in zip(
            preds, ious.tolist(), outputs["index"].tolist(), strict=True
        ):
            worst.add(
                1 - iou, {"position": position, "iou": iou, "pred": pred.to(torch.uint8, copy=True)}
            )

    def report(self, trainer: Trainer, pl_module: LightningModule, examples: list[Any]) -> None:
        title = (
            f"worst validation IoU ({len(examples)} images), epoch {trainer.current_epoch + 1} "
            f"({self.monitor} {self.best:.4f})"
        )
        fig = worst_iou_figure(
            trainer.datamodule,
            examples,
            pl_module.class_names,
            pl_module.hparams.ignore_index,
            title,
        )
        publish(trainer, fig, "val/worst_iou", "worst_iou.png")
