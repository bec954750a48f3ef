"""Scores of out-of-fold predictions, the same definitions for every family (the task's own
``classification_metrics``), and a candidate's leaderboard row against the objective."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from mlcycle.core.errors import UserError

SCORES = ("f1", "acc", "precision", "recall", "loss", "error")


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


def objective_of(raw: dict[str, Any] | None, config: dict[str, Any]) -> Any:
    """The comparison's objective: its own ``objective:``, else the base config's; or None."""
    from mlcycle.core.objective import parse_objective

    return parse_objective(raw if raw is not None else config.get("objective"))


def score_key(
    objective: Any, monitor: tuple[str, str] = ("val/f1", "max"), classify: bool = True
) -> tuple[str, str]:
    """The fold score the leaderboard ranks by and its mode: the objective's metric, else the
    task's ``monitor``. Classification scores come from predictions (any of ``SCORES``);
    segmentation and detection scores from each fold run's metrics.json."""
    metric = objective.metric if objective is not None else monitor[0]
    key = metric.split("/")[-1]
    if classify and key not in SCORES:
        raise UserError(
            f"objective.metric '{metric}' cannot be computed from predictions; compare.py "
            f"ranks by one of {', '.join('val/' + s for s in SCORES)}"
        )
    mode = "min" if key in ("loss", "error") else "max"
    if objective is None and not classify:
        mode = monitor[1]
    if objective is not None:  # its mode, else from the name (rmse, mae, loss: lower is better)
        mode = objective.direction
    return key, mode


def task_monitor(config: dict[str, Any], data: Any = None) -> tuple[str, str]:
    """The monitored metric and mode of the config's task (``val/f1``, ``val/iou``, ``val/map``);
    a table task on regression data monitors its ``regression_monitor`` (``val/rmse``, min),
    which its class-level ``monitor`` does not say."""
    from mlcycle.core.imports import import_object

    cls = import_object(config["model"]["class_path"], "model class")
    monitor = getattr(cls, "monitor", None)
    regression = getattr(cls, "regression_monitor", None)
    if regression is not None and getattr(data, "task_kind", None) == "regression":
        monitor = regression
    return (monitor[0], monitor[1]) if monitor else ("val/f1", "max")


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


def summarize(candidate: Any, records: list[dict[str, Any]], comparison: Any) -> dict[str, Any]:
    """The candidate's leaderboard row from its fold records; ``line`` for the console."""
    key, mode = score_key(comparison.objective, comparison.monitor, comparison.pool.classify)
    metric = f"val/{key}"
    row: dict[str, Any] = {"candidate": candidate.name, "family": candidate.kind, "metric": metric}
    failed = [r for r in records if r.get("status") != "finished"]
    if failed:
        row.update(mean=None, std=None, error=f"fold {failed[0]['fold']}: {failed[0]['error']}")
        row["line"] = f"{candidate.name}: failed ({row['error']})"
        return row
    missing = [r["fold"] for r in records if key not in r["scores"]]
    if missing:
        row.update(mean=None, std=None, error=f"fold {missing[0]}: no {metric} in its scores")
        row["line"] = f"{candidate.name}: {row['error']}"
        return row
    values = [r["scores"][key] for r in records]
    row["mean"] = round(float(np.mean(values)), 6)
    row["std"] = round(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, 6)
    row["folds"] = values
    for name in ("fit_s", "latency_ms", "size_mb"):
        measured = [r[name] for r in records if r.get(name) is not None]
        row[name] = round(float(np.mean(measured)), 4) if measured else None
    row["params"] = int(np.mean([r["params"] for r in records]))
    per_class: dict[str, float] = {}
    if comparison.pool.classify:
        per_class = dict(
            zip(
                comparison.pool.class_names,
                np.mean([r["scores"]["f1_per_class"] for r in records], axis=0).tolist(),
                strict=True,
            )
        )
        row["per_class_f1"] = {k: round(v, 6) for k, v in per_class.items()}
    row["gate"], row["budget"] = gate_of(comparison.objective, metric, row["mean"], per_class, row)
    verdict = {True: "PASS", False: "FAIL", None: "-"}
    row["line"] = (
        f"{candidate.name}: {metric} {row['mean']:.4f} +- {row['std']:.4f} over {len(values)} folds, "
        f"{row['latency_ms'] or float('nan'):.3f} ms/{getattr(comparison, 'unit', 'image')}, gate {verdict[row['gate']]}, budget {verdict[row['budget']]}"
    )
    row["mode"] = mode
    return row
