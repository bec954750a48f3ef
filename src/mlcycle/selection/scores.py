"""Scores of held-out predictions, the same definitions for every family and every stage of
selection: class probabilities (the classification task's own ``classification_metrics``) and
predicted values; the score a leaderboard ranks by, and the objective's gate on it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from mlcycle.core.errors import UserError

SCORES = ("f1", "acc", "precision", "recall", "loss", "error")  # of class probabilities
REGRESSION_SCORES = ("rmse", "mae", "r2", "mse")  # of predicted values
LOWER_IS_BETTER = ("loss", "error", "rmse", "mae", "mse")


def fold_scores(probs: np.ndarray, target: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Macro F1, accuracy, precision, recall, log loss and error of one fold's predictions,
    and F1 per class."""
    from mlcycle.tasks.classification import classification_metrics

    p, t = torch.from_numpy(np.asarray(probs, dtype=np.float32)), torch.from_numpy(target).long()
    metrics = classification_metrics(num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class absent from a fold
        values = metrics(p, t)
    scores = {k: round(float(v), 6) for k, v in values.items() if not k.endswith("_per_class")}
    scores["loss"] = round(float(-p[torch.arange(len(t)), t].clamp_min(1e-12).log().mean()), 6)
    scores["error"] = round(1 - scores["acc"], 6)
    scores["f1_per_class"] = [round(float(v), 6) for v in values["f1_per_class"]]
    return scores


def regression_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MSE and R^2 (1 - SSE/SST over the fold's own targets, as torchmetrics)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    error = target - pred
    mse = float(np.mean(error**2))
    total = float(np.sum((target - target.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0
    return {
        "rmse": round(mse**0.5, 6),
        "mae": round(float(np.mean(np.abs(error))), 6),
        "mse": round(mse, 6),
        "r2": round(r2, 6),
    }


def objective_of(raw: dict[str, Any] | None, config: dict[str, Any]) -> Any:
    """The comparison's objective: its own ``objective:``, else the base config's; or None."""
    from mlcycle.core.objective import parse_objective

    return parse_objective(raw if raw is not None else config.get("objective"))


def score_key(
    objective: Any,
    monitor: tuple[str, str] = ("val/f1", "max"),
    names: tuple[str, ...] | None = SCORES,
    noun: str = "predictions",
) -> tuple[str, str]:
    """The fold score the leaderboard ranks by and its mode: the objective's metric, else the
    task's ``monitor``. ``names``: the scores computed from the folds' ``noun`` (class
    probabilities: ``SCORES``); None where each fold run's own metrics.json scores it."""
    metric = objective.metric if objective is not None else monitor[0]
    key = metric.split("/")[-1]
    if names is not None and key not in names:
        raise UserError(
            f"objective.metric '{metric}' cannot be computed from {noun}; compare.py "
            f"ranks by one of {', '.join('val/' + s for s in names)}"
        )
    mode = "min" if key in LOWER_IS_BETTER else "max"
    if objective is None and names is None:
        mode = monitor[1]
    if objective is not None:  # its mode, else from the name (rmse, mae, loss: lower is better)
        mode = objective.direction
    return key, mode


def gate_of(objective: Any, metric: str, mean: float, per_class: dict[str, float], row: dict):
    """``(gate, budget)``: the metric and per-class minimums, and the latency and size budget;
    None where the objective sets nothing."""
    if objective is None:
        return None, None
    from mlcycle.core.objective import check_gate

    gate = check_gate(
        objective,
        {metric: mean},
        per_class,
        latency_ms=row.get("latency_ms"),
        size_mb=row.get("size_mb"),
    )
    budget_names = {"max_latency_ms", "max_size_mb"}
    quality = [c for c in gate.checks if c["name"] not in budget_names and c["passed"] is not None]
    budget = [c for c in gate.checks if c["name"] in budget_names and c["passed"] is not None]
    return (
        all(c["passed"] for c in quality) if quality else None,
        all(c["passed"] for c in budget) if budget else None,
    )
