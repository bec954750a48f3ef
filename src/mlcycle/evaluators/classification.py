"""Classification: overall and per-class metrics, confusion matrix, gallery of mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics import MeanMetric

from mlcycle.evaluators import predict_split, register_evaluator
from mlcycle.evaluators.calibration import calibration_report
from mlcycle.reports.figures import confusion_matrix_figure, save
from mlcycle.reports.mistakes import confusion_matrix, top_mistakes


def collect(model: Any, data: Any, split: str) -> dict[str, Any]:
    """The split's metrics (the task's ``classification_metrics``), mean loss, and every
    image's probabilities, label and position, from the task's ``predict_step``."""
    from mlcycle.tasks.classification import classification_metrics

    metrics = classification_metrics(len(model.class_names), per_class=True)
    loss = MeanMetric()
    parts: dict[str, list[torch.Tensor]] = {"probs": [], "target": [], "index": []}

    def consume(out: dict[str, torch.Tensor]) -> None:
        metrics.update(out["probs"], out["target"])
        nll = torch.nn.functional.nll_loss(out["probs"].clamp_min(1e-12).log(), out["target"])
        loss.update(nll, weight=len(out["target"]))
        for key, values in parts.items():
            values.append(out[key])

    predict_split(model, data, split, consume)
    out: dict[str, Any] = {k: torch.cat(v) for k, v in parts.items()}
    out["values"] = metrics.compute()
    out["loss"] = float(loss.compute())
    return out


def per_class(values: dict[str, torch.Tensor], support: np.ndarray, names: list[str]):
    """``{class: {precision, recall, f1, support}}`` from the metrics' per-class values."""
    columns = {m: values[f"{m}_per_class"].tolist() for m in ("precision", "recall", "f1")}
    return {
        name: {**{m: round(float(v[i]), 6) for m, v in columns.items()}, "support": int(support[i])}
        for i, name in enumerate(names)
    }


def overall(values: dict[str, torch.Tensor], loss: float) -> dict[str, float]:
    result = {k: round(float(v), 6) for k, v in values.items() if not k.endswith("_per_class")}
    result["loss"] = round(loss, 6)
    result["error"] = round(1 - result["acc"], 6)
    return result


def summary(
    out: dict[str, Any], matrix: np.ndarray, names: list[str], split: str, run_dir: Path
) -> dict[str, Any]:
    """Overall and per-class metrics, the confusion matrix, one report line per class,
    ``confusion_matrix_<split>.png``, and the calibration (ECE and ``reliability_<split>.png``);
    ``out`` holds the metrics' ``values``, the ``loss``, the ``probs`` and the ``target``."""
    result = {
        "metrics": overall(out["values"], out["loss"]),
        "per_class": per_class(out["values"], matrix.sum(axis=1), names),
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }
    width = max(len(n) for n in names)
    result["report_lines"] = [
        f"  {name:<{width}}  f1 {row['f1']:.4f}  precision {row['precision']:.4f}  "
        f"recall {row['recall']:.4f}  support {row['support']}"
        for name, row in result["per_class"].items()
    ]
    title = f"{split} confusion matrix (f1 {result['metrics']['f1']:.4f})"
    save(confusion_matrix_figure(matrix, names, title), run_dir / f"confusion_matrix_{split}.png")
    found = calibration_report(out["probs"].numpy(), out["target"].numpy(), split, run_dir)
    result["metrics"]["ece"] = found["calibration"]["ece"]
    result["calibration"] = found["calibration"]
    result["report_lines"].append(found["line"])
    return result


@register_evaluator("classification")
def evaluate_classification(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    from mlcycle.callbacks.misclassified import mistake_gallery

    names = list(model.class_names)
    out = collect(model, data, split)
    matrix = confusion_matrix(out["probs"], out["target"], len(names))
    result = {"images": int(len(out["target"])), **summary(out, matrix, names, split, run_dir)}
    mistakes = top_mistakes(out["probs"], out["target"], out["index"], 24)
    wrong = int(matrix.sum() - np.trace(matrix))
    title = f"most confident {split} mistakes ({len(mistakes)} shown, {wrong} in all)"
    save(mistake_gallery(data, mistakes, names, title), run_dir / f"misclassified_{split}.png")
    return result
