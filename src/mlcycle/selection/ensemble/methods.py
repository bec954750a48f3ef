"""Fitting and scoring the combination methods on held-out class probabilities, and choosing
one: the same for every kind of ensemble that combines probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcycle.selection.ensemble import combine
from mlcycle.selection.scores import REGRESSION_SCORES, fold_scores, regression_scores, score_key


@dataclass
class Outcome:
    """One method: its combination fit on every row, and its scores."""

    method: str
    combination: combine.Combination
    scores: dict[str, Any]  # honest: cross-fitted when the method fits anything
    in_sample: dict[str, Any]  # the final combination on the rows it was fit on
    cross_fitted: bool


def score_methods(
    methods: list[str], probs: np.ndarray, target: np.ndarray, folds: np.ndarray, classes: int
) -> list[Outcome]:
    outcomes = []
    for method in methods:
        combination = combine.fit(method, probs, target, classes)
        in_sample = fold_scores(combine.apply(combination, probs), target, classes)
        fitted = method != "soft"
        honest = (
            fold_scores(
                combine.cross_fitted(method, probs, target, folds, classes), target, classes
            )
            if fitted
            else in_sample
        )
        outcomes.append(Outcome(method, combination, honest, in_sample, fitted))
    return outcomes


def choose(outcomes: list[Outcome], objective: Any) -> Outcome:
    """The best honest score of the objective's metric; ties: lower log loss, then the simpler
    method (soft, weighted, stacking)."""
    key, mode = score_key(objective)
    sign = -1 if mode == "max" else 1
    return min(outcomes, key=lambda o: (sign * round(o.scores[key], 9), o.scores["loss"]))


def score_value_methods(
    methods: list[str], values: np.ndarray, target: np.ndarray, folds: np.ndarray
) -> list[Outcome]:
    """As :func:`score_methods` for predicted values (M members, N rows)."""
    outcomes = []
    for method in methods:
        combination = combine.fit_values(method, values, target)
        in_sample = regression_scores(combine.apply_values(combination, values), target)
        fitted = method != "soft"
        honest = (
            regression_scores(combine.cross_fitted_values(method, values, target, folds), target)
            if fitted
            else in_sample
        )
        outcomes.append(Outcome(method, combination, honest, in_sample, fitted))
    return outcomes


def choose_values(outcomes: list[Outcome], objective: Any) -> Outcome:
    """The best honest score of the objective's regression metric (else RMSE); ties: the
    simpler method."""
    metric = objective.metric.split("/")[-1] if objective is not None else "rmse"
    key = metric if metric in REGRESSION_SCORES else "rmse"
    sign = -1 if key == "r2" else 1
    return min(outcomes, key=lambda o: sign * round(o.scores[key], 9))


def brief(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores without the per-class list (for ensemble.json)."""
    return {k: v for k, v in scores.items() if k != "f1_per_class"}
