"""Scoring a multi-label run for ``evaluate.py``: metrics over labels, and per label.

An evaluator is ``fn(model, data, split, run_dir) -> dict``, registered under the task's
``task_name``. It runs the task's ``predict_step`` over the split through ``predict_split``
(``Trainer.predict``: device placement and precision are Lightning's), consumes the outputs
batch by batch, may write figures into ``run_dir``, and returns a JSON-ready dict with at least
``images`` and ``metrics`` (``report_lines`` are printed, not saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric

from mlcycle.evaluators import predict_split, register_evaluator
from mlcycle_plugin_example.task import multilabel_metrics


@register_evaluator("multilabel")
def evaluate_multilabel(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    labels, threshold = list(model.labels), float(model.hparams.threshold)
    metrics = multilabel_metrics(len(labels), threshold)  # the task's own definitions
    loss = MeanMetric()
    support, predicted = torch.zeros(len(labels)), torch.zeros(len(labels))  # per label

    def consume(out: dict[str, torch.Tensor]) -> None:
        probs, target = out["probs"], out["target"]
        metrics.update(probs, target.long())
        loss.update(F.binary_cross_entropy(probs, target), weight=len(target))
        support.add_(target.sum(dim=0))
        predicted.add_((probs >= threshold).sum(dim=0))

    predict_split(model, data, split, consume)
    values = metrics.compute()
    per_label_f1 = values.pop("f1_per_label").tolist()
    result = {k: round(float(v), 6) for k, v in values.items()}
    result["loss"] = round(float(loss.compute()), 6)
    per_label = {
        label: {"f1": round(f, 6), "support": int(s), "predicted": int(p)}
        for label, f, s, p in zip(labels, per_label_f1, support, predicted, strict=True)
    }
    width = max(len(label) for label in labels)
    return {
        "images": len(data.dataset(split)),
        "metrics": result,
        "per_label": per_label,
        "labels": labels,
        "threshold": threshold,
        "report_lines": [
            f"  {label:<{width}}  f1 {row['f1']:.4f}  support {row['support']}  "
            f"predicted {row['predicted']}"
            for label, row in per_label.items()
        ],
    }
