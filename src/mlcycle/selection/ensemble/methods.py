"""Fitting and scoring the combination methods on held-out class probabilities, and choosing
one: the same for every kind of ensemble that combines probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcycle.selection.ensemble import combine
from mlcycle.selection.scores import fold_scores, score_key


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


def brief(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores without the per-class list (for ensemble.json)."""
    return {k: v for k, v in scores.items() if k != "f1_per_class"}
