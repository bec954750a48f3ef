"""The validation images with the worst IoU, true and predicted masks: ``worst_iou.png``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from matplotlib.figure import Figure

from mlcycle.callbacks.worst_examples import BestEpochWorst
from mlcycle.reports.figure_worker import draw_later
from mlcycle.reports.mask_box_errors import Worst
from mlcycle.reports.mask_box_galleries import mask_gallery_figure


def worst_iou_inputs(
    data: Any, examples: list[dict[str, Any]], class_names: list[str], ignore_index: int, title: str
) -> dict[str, Any]:
    """The arguments of ``mask_gallery_figure``. ``examples``: ``{"position", "iou", "pred"}``
    rows; images and true masks from ``data``."""
    pairs = [data.raw_pair(e["position"]) for e in examples]
    return {
        "images": [p[0] for p in pairs],
        "true_masks": [p[1] for p in pairs],
        "pred_masks": [e["pred"].numpy() for e in examples],
        "captions": [f"#{e['position']}  IoU {e['iou']:.2f}" for e in examples],
        "class_names": list(class_names),
        "title": title,
        "ignore_index": ignore_index,
    }


def worst_iou_figure(
    data: Any, examples: list[dict[str, Any]], class_names: list[str], ignore_index: int, title: str
) -> Figure:
    return mask_gallery_figure(**worst_iou_inputs(data, examples, class_names, ignore_index, title))


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
        inputs = worst_iou_inputs(
            trainer.datamodule,
            examples,
            pl_module.class_names,
            pl_module.hparams.ignore_index,
            title,
        )
        draw_later(trainer, "worst_iou.png", mask_gallery_figure, inputs, tag="val/worst_iou")
