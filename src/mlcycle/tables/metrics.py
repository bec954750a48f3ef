"""The tabular metrics: classification's own (macro F1, accuracy, ...) and regression's RMSE,
MAE and R^2 (torchmetrics). Training logs them, evaluate.py reports them, the classic models
are scored with the same objects."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from mlcycle.tasks.base import flatten_per_class
from mlcycle.tasks.classification import classification_metrics

KINDS = ("classification", "regression")
# What each kind logs on the progress bar and prints on the epoch line; the first is the monitor.
EPOCH_METRICS = {
    "classification": ("val/f1", "val/acc"),
    "regression": ("val/rmse", "val/mae", "val/r2"),
}


def regression_metrics() -> MetricCollection:
    return MetricCollection(
        {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()}
    )


def tabular_metrics(kind: str, num_classes: int, per_class: bool = False) -> MetricCollection:
    """The metrics of ``kind``: classification's on ``(probs, target)``, regression's on
    ``(prediction, target)`` in the target's units."""
    if kind == "regression":
        return regression_metrics()
    return classification_metrics(num_classes, per_class=per_class)


def flatten(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """Computed metrics as ``<prefix>/<name>`` (classification: per class too, and error)."""
    if "rmse" in values:
        return {f"{prefix}/{name}": float(v) for name, v in values.items()}
    return flatten_per_class(values, class_names, prefix)
