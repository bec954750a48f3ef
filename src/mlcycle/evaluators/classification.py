"""Classification: overall and per-class metrics, confusion matrix, gallery of mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mlcycle.evaluators import register_evaluator
from mlcycle.reports.figures import confusion_matrix_figure, save
from mlcycle.reports.mistakes import confusion_matrix, top_mistakes


@torch.inference_mode()
def predict(model: torch.nn.Module, loader: Any, device: torch.device) -> dict[str, torch.Tensor]:
    model.to(device)
    parts: dict[str, list[torch.Tensor]] = {"probs": [], "target": [], "index": []}
    for x, y, index in tqdm(loader, desc="evaluating", unit="batch", leave=False):
        parts["probs"].append(model(x.to(device)).float().softmax(dim=1).cpu())
        parts["target"].append(y)
        parts["index"].append(index)
    return {k: torch.cat(v) for k, v in parts.items()}


def per_class(matrix: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    tp = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(tp),
        where=precision + recall > 0,
    )
    return {
        name: {
            "precision": round(p, 6),
            "recall": round(r, 6),
            "f1": round(f, 6),
            "support": int(s),
        }
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }


def overall(probs: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    from mlcycle.tasks.classification import classification_metrics

    metrics = classification_metrics(num_classes)
    metrics.update(probs, target)
    values = {k: v for k, v in metrics.compute().items() if k != "f1_per_class"}
    result = {k: round(float(v), 6) for k, v in values.items()}
    result["loss"] = round(
        float(torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), target)), 6
    )
    result["error"] = round(1 - result["acc"], 6)
    return result


@register_evaluator("ClassificationTask")
def evaluate_classification(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    from mlcycle.callbacks.misclassified import mistake_gallery

    names = list(model.class_names)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = predict(model, data.split_dataloader(split), device)
    matrix = confusion_matrix(out["probs"], out["target"], len(names))
    result = {
        "images": int(len(out["target"])),
        "metrics": overall(out["probs"], out["target"], len(names)),
        "per_class": per_class(matrix, names),
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
    mistakes = top_mistakes(out["probs"], out["target"], out["index"], 24)
    wrong = int(matrix.sum() - np.trace(matrix))
    title = f"most confident {split} mistakes ({len(mistakes)} shown, {wrong} in all)"
    save(mistake_gallery(data, mistakes, names, title), run_dir / f"misclassified_{split}.png")
    return result
