"""Detection: COCO mAP on the images' own pixels, COCO results and ground-truth files, and the
gallery of false positives and missed objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlcycle.callbacks.detection_gallery import errors_figure, score_errors
from mlcycle.data.coco import ground_truth, results
from mlcycle.evaluators import predict_split, register_evaluator
from mlcycle.reports.figures import save
from mlcycle.reports.mask_box_errors import Worst


def _from_rows(rows: list[dict[str, Any]], class_of: dict[int, int]) -> dict[str, torch.Tensor]:
    """Detections exactly as written to the results file (rounded), back in xyxy tensors."""
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in rows)]
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4),
        "scores": torch.tensor([r["score"] for r in rows], dtype=torch.float64),
        "labels": torch.tensor([class_of[r["category_id"]] for r in rows], dtype=torch.long),
    }


def collect(model: Any, data: Any, split: str) -> tuple[Any, list, list, Worst]:
    """The split through the task's ``predict_step``: the COCO metric (``detection_metric``)
    fed with each image's detections as written to the results file, in the image file's own
    pixels; the results rows; the original samples; the images with the most errors."""
    from mlcycle.tasks.detection import detection_metric

    category_ids = list(data.category_ids)
    class_of = {c: k for k, c in enumerate(category_ids)}
    metric = detection_metric()
    height, width = data.image_size
    rows: list[dict[str, Any]] = []
    samples, worst = [], Worst(12)

    def consume(out: dict[str, Any]) -> None:
        for pred, target, pos in zip(
            out["preds"], out["target"], out["index"].tolist(), strict=True
        ):
            sample = data.original(pos)
            samples.append(sample)
            w, h = sample.size
            scale = torch.tensor([w / width, h / height, w / width, h / height])
            mine = results(
                sample.image_id,
                (pred["boxes"].double() * scale).numpy(),
                pred["scores"].numpy(),
                pred["labels"].numpy(),
                category_ids,
            )
            rows.extend(mine)
            metric.update([_from_rows(mine, class_of)], [_truth(sample)])
            count, row = score_errors(pred, target, pos, model.hparams.gallery_score)
            if count:
                worst.add(count, row)

    predict_split(model, data, split, consume)
    return metric, rows, samples, worst


def _truth(sample: Any) -> dict[str, torch.Tensor]:
    truth = {
        "boxes": torch.tensor(sample.boxes, dtype=torch.float64).reshape(-1, 4),
        "labels": torch.tensor(sample.labels, dtype=torch.long),
        "iscrowd": torch.tensor(sample.crowd, dtype=torch.long),
    }
    if sample.areas is not None:
        truth["area"] = torch.tensor(sample.areas, dtype=torch.float64)
    return truth


@register_evaluator("detection")
def evaluate_detection(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    """Scores the split in the image files' own pixels, as a COCO evaluation of
    ``predictions_<split>.json`` against ``ground_truth_<split>.json`` would; writes both and
    ``detection_errors_<split>.png``."""
    from mlcycle.tasks.detection import flatten_map

    names = list(model.class_names)
    category_ids = list(data.category_ids)
    metric, rows, samples, worst = collect(model, data, split)
    values = flatten_map(metric.compute(), names, split)
    summary = {k.split("/", 1)[1]: round(v, 6) for k, v in values.items() if k.count("/") == 1}
    objects = np.bincount(
        np.concatenate([s.labels[~s.crowd] for s in samples] or [np.zeros(0, np.int64)]),
        minlength=len(names),
    )
    per_class = {
        name: {"ap": round(values.get(f"{split}/ap/{name}", -1.0), 6), "objects": int(n)}
        for name, n in zip(names, objects.tolist(), strict=True)
    }
    predictions, truth_file = f"predictions_{split}.json", f"ground_truth_{split}.json"
    (run_dir / predictions).write_text(json.dumps(rows) + "\n")
    (run_dir / truth_file).write_text(json.dumps(ground_truth(samples, names, category_ids)) + "\n")
    title = (
        f"{split} images with the most errors at score {model.hparams.gallery_score} "
        f"({len(worst)} shown; mAP@0.5 {summary.get('map_50', -1):.4f})"
    )
    save(
        errors_figure(data, worst.items(), names, title), run_dir / f"detection_errors_{split}.png"
    )
    width_ = max(len(n) for n in names)
    return {
        "images": len(samples),
        "metrics": summary,
        "per_class": per_class,
        "class_names": names,
        "predictions": predictions,
        "ground_truth": truth_file,
        "report_lines": [
            f"  {name:<{width_}}  AP {row['ap']:.4f}  objects {row['objects']}"
            for name, row in per_class.items()
        ]
        + [f"  COCO results: {run_dir / predictions}"],
    }
