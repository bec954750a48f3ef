"""A table task's dummy baselines: majority and stratified for classification, mean and median
for regression, fitted on the train rows and scored with the task's own metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlcycle.callbacks.baselines import scored, values
from mlcycle.tables.metrics import tabular_metrics
from mlcycle.tasks.classification import class_baselines


def table_baselines(
    regression: bool, num_classes: int, datamodule: Any, split: str
) -> dict[str, dict[str, float]]:
    """The baselines of a table's ``split`` (see :mod:`mlcycle.callbacks.baselines`)."""
    train, target = datamodule.arrays("train")[1], datamodule.arrays(split)[1]
    if not regression:
        return class_baselines(train, target, num_classes)
    if len(target) == 0:
        return {}
    y = torch.as_tensor(np.asarray(target, dtype=np.float32))

    def score(pred: np.ndarray) -> dict[str, Any]:
        return tabular_metrics("regression", num_classes)(torch.from_numpy(pred), y)

    return scored(values(train, len(y)), score)
