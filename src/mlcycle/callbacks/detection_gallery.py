"""Validation images with the most detection errors: false positives in red, missed objects in
yellow (dashed), correct detections in green: ``detection_errors.png``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from matplotlib.figure import Figure

from mlcycle.callbacks.worst_examples import BestEpochWorst
from mlcycle.reports.figure_worker import draw_later
from mlcycle.reports.mask_box_errors import Worst, match_boxes
from mlcycle.reports.mask_box_galleries import BoxPanel, box_gallery_figure


def score_errors(
    pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor], position: int, score: float
) -> tuple[int, dict[str, Any]]:
    """``(error count, gallery row)`` of one image; labels are class indices from 0."""
    pred = {k: v.detach().cpu() for k, v in pred.items()}
    target = {k: v.detach().cpu() for k, v in target.items()}
    errors = match_boxes(pred, target, score_threshold=score)
    return errors.count, {"position": position, "pred": pred, "target": target, "errors": errors}


def errors_inputs(
    data: Any, rows: list[dict[str, Any]], class_names: list[str], title: str
) -> dict[str, Any]:
    """The arguments of ``box_gallery_figure`` for ``rows`` (images read from ``data``)."""
    panels = []
    for row in rows:
        pred, target, errors = row["pred"], row["target"], row["errors"]

        def box(t: dict[str, torch.Tensor], i: int, with_score: bool) -> tuple[list[float], str]:
            name = class_names[int(t["labels"][i])]
            text = f"{name} {float(t['scores'][i]):.2f}" if with_score else name
            return [float(v) for v in t["boxes"][i]], text

        panels.append(
            BoxPanel(
                data.raw_image(row["position"]),
                [box(pred, i, True) for i in errors.correct],
                [box(pred, i, True) for i in errors.false_positives],
                [box(target, j, False) for j in errors.missed],
                f"#{row['position']}: {len(errors.false_positives)} false pos., {len(errors.missed)} missed",
            )
        )
    return {"panels": panels, "title": title}


def errors_figure(
    data: Any, rows: list[dict[str, Any]], class_names: list[str], title: str
) -> Figure:
    return box_gallery_figure(**errors_inputs(data, rows, class_names, title))


class DetectionGallery(BestEpochWorst):
    """Args: limit: images shown (most errors first); score: the score at which a detection
    counts (a prediction is correct at IoU 0.5 with an object of its class)."""

    def __init__(
        self, limit: int = 12, score: float = 0.5, monitor: str = "val/map", mode: str = "max"
    ) -> None:
        super().__init__(limit, monitor, mode)
        self.score = score

    def collect(self, pl_module: LightningModule, outputs: dict[str, Any], worst: Worst) -> None:
        for pred, target, position in zip(
            outputs["preds"], outputs["targets"], outputs["index"].tolist(), strict=True
        ):
            count, row = score_errors(pred, target, position, self.score)
            if count:
                worst.add(count, row)

    def report(self, trainer: Trainer, pl_module: LightningModule, examples: list[Any]) -> None:
        title = (
            f"validation images with the most errors at score {self.score} ({len(examples)} shown), "
            f"epoch {trainer.current_epoch + 1} ({self.monitor} {self.best:.4f})"
        )
        inputs = errors_inputs(trainer.datamodule, examples, pl_module.class_names, title)
        draw_later(
            trainer, "detection_errors.png", box_gallery_figure, inputs, tag="val/detection_errors"
        )
