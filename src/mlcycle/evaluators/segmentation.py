"""Segmentation: mean and per-class IoU, pixel accuracy, Dice, and the worst-IoU gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torchmetrics import MeanMetric

from mlcycle.callbacks.segmentation_gallery import worst_iou_figure
from mlcycle.evaluators import predict_split, register_evaluator
from mlcycle.reports.figures import save
from mlcycle.reports.mask_box_errors import Worst, image_iou


@register_evaluator("segmentation")
def evaluate_segmentation(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    """Writes ``worst_iou_<split>.png``; returns the metrics of the whole split."""
    from mlcycle.tasks.segmentation import flatten_segmentation, segmentation_metrics

    names = list(model.class_names)
    k, ignore = len(names), int(model.hparams.ignore_index)
    metrics = segmentation_metrics(k, ignore)
    loss = MeanMetric()
    support = torch.zeros(k, dtype=torch.long)
    worst, seen = Worst(12), [0]

    def consume(out: dict[str, torch.Tensor]) -> None:
        pred, y = out["pred"], out["target"]
        metrics.update(pred, y)
        loss.update(out["loss"])
        support.add_(torch.bincount(y[y != ignore].long(), minlength=k)[:k])
        ious = image_iou(pred, y, k, ignore)
        for p, iou, pos in zip(pred, ious.tolist(), out["index"].tolist(), strict=True):
            worst.add(1 - iou, {"position": pos, "iou": iou, "pred": p.to(torch.uint8, copy=True)})
        seen[0] += len(pred)

    predict_split(model, data, split, consume)
    images = seen[0]
    flat = flatten_segmentation(metrics.compute(), names, split)
    summary = {key.split("/", 1)[1]: round(v, 6) for key, v in flat.items() if key.count("/") == 1}
    summary["loss"] = round(float(loss.compute()), 6)
    per_class = {
        name: {"iou": round(flat[f"{split}/iou/{name}"], 6), "pixels": int(n)}
        for name, n in zip(names, support.tolist(), strict=True)
    }
    width = max(len(n) for n in names)
    title = f"worst {split} IoU ({len(worst)} images; mean IoU {summary['iou']:.4f})"
    save(
        worst_iou_figure(data, worst.items(), names, ignore, title),
        run_dir / f"worst_iou_{split}.png",
    )
    return {
        "images": images,
        "metrics": summary,
        "per_class": per_class,
        "class_names": names,
        "report_lines": [
            f"  {name:<{width}}  iou {row['iou']:.4f}  pixels {row['pixels']}"
            for name, row in per_class.items()
        ],
    }
