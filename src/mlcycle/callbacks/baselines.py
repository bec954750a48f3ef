"""Dummy baselines: the scores a model must beat to have learned anything useful.

Each task answers ``baselines(datamodule, split)`` (``mlcycle.tasks.base.Task``) in its own
file with the helpers here, scoring the baselines with its own metric code:

* classification: ``majority`` (always the most frequent train class) and ``stratified``
  (random labels drawn with the train class shares, seeded), scikit-learn's
  ``DummyClassifier``;
* regression: ``mean`` and ``median`` of the train targets (``DummyRegressor``);
* segmentation and detection: ``empty``, the empty prediction (all background, no boxes).

A baseline's scores are keyed as the evaluator's metrics (``f1``, ``acc``, ``rmse``, ``iou``,
no ``val/`` prefix). :func:`baseline_finding` is the fit diagnosis's line about them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mlcycle.callbacks.finding import Finding

SEED = 0  # the stratified baseline's draws: the same figures on every run
CLASS_BASELINES = {"majority": "most_frequent", "stratified": "stratified"}
VALUE_BASELINES = {"mean": "mean", "median": "median"}
Scores = dict[str, dict[str, float]]  # baseline name -> metric -> score


def class_probs(train_y: np.ndarray, n: int, num_classes: int) -> dict[str, np.ndarray]:
    """Per classification baseline, its (n, num_classes) probabilities for ``n`` samples,
    fitted on the train labels ``train_y`` (class indices)."""
    from sklearn.dummy import DummyClassifier

    train_y = np.asarray(train_y, dtype=np.int64)
    found = {}
    for name, strategy in CLASS_BASELINES.items():
        model = DummyClassifier(strategy=strategy, random_state=SEED)
        model.fit(np.zeros((len(train_y), 1)), train_y)
        seen = model.predict_proba(np.zeros((n, 1)))
        probs = np.zeros((n, num_classes), dtype=np.float32)
        probs[:, model.classes_] = seen  # classes absent from train get 0
        found[name] = probs
    return found


def values(train_y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per regression baseline, its prediction for ``n`` samples, fitted on ``train_y``."""
    from sklearn.dummy import DummyRegressor

    train_y = np.asarray(train_y, dtype=np.float64)
    found = {}
    for name, strategy in VALUE_BASELINES.items():
        model = DummyRegressor(strategy=strategy).fit(np.zeros((len(train_y), 1)), train_y)
        found[name] = model.predict(np.zeros((n, 1))).astype(np.float32)
    return found


def scored(
    predictions: dict[str, np.ndarray], score: Callable[[np.ndarray], dict[str, float]]
) -> Scores:
    """Each baseline's ``score(prediction)``: scalar metrics only, rounded."""
    return {
        name: {k: round(float(v), 6) for k, v in score(p).items() if np.ndim(v) == 0}
        for name, p in predictions.items()
    }


def baselines_or_empty(task: Any, datamodule: Any, split: str = "val") -> Scores:
    """``task.baselines(datamodule, split)``, or nothing when the data module lacks what the
    task reads (the diagnosis then says nothing about baselines)."""
    if datamodule is None:
        return {}
    try:
        return task.baselines(datamodule, split) or {}
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return {}


def best_of(found: Scores, key: str, mode: str) -> tuple[str, float] | None:
    """The strongest baseline on metric ``key`` (no ``val/``) and its score."""
    scores = [(n, s[key]) for n, s in found.items() if math.isfinite(s.get(key, math.nan))]
    if not scores:
        return None
    pick = max if mode == "max" else min
    return pick(scores, key=lambda item: item[1])


def beats(value: float, baseline: float, mode: str) -> bool:
    return value > baseline if mode == "max" else value < baseline


def words(found: Scores, key: str) -> str:
    """``majority 0.2222, stratified 0.3010``: every baseline's score on ``key``."""
    return ", ".join(f"{n} {s[key]:.4f}" for n, s in found.items() if key in s)


def not_beaten(who: str, metric: str, value: float, found: Scores, mode: str) -> str | None:
    """One line when ``value`` does not beat the strongest baseline on ``metric``, else None:
    ``candidate mlp (val/f1 0.2100) does not beat the majority baseline (0.2200)``."""
    best = best_of(found, metric.split("/")[-1], mode)
    if best is None or beats(value, best[1], mode):
        return None
    return f"{who} ({metric} {value:.4f}) does not beat the {best[0]} baseline ({best[1]:.4f})"


def baseline_finding(
    rows: list[dict[str, float]], monitor: str, mode: str, found: Scores
) -> Finding | None:
    """The fit's line about its baselines: ``below_baseline`` when the best epoch's monitored
    metric does not beat the strongest one, else ``baseline`` with their scores."""
    key = monitor.split("/")[-1]
    scored_rows = [r for r in rows if math.isfinite(r.get(monitor, math.nan))]
    if not scored_rows or best_of(found, key, mode) is None:
        return None
    best = (max if mode == "max" else min)(scored_rows, key=lambda r: r[monitor])
    value, epoch = best[monitor], int(best["epoch"])
    values = {monitor: value, "baselines": found}
    line = not_beaten("the best model", monitor, value, found, mode)
    if line is not None:
        return Finding(
            "below_baseline",
            epoch,
            line,
            "check the labels and the features (scripts/validate_data.py), then the learning "
            "rate (--find_lr) and the model's size",
            values,
        )
    return Finding(
        "baseline", epoch, f"val {key} {value:.4f} vs baselines {words(found, key)}", None, values
    )
