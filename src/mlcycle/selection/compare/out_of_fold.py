"""A candidate's out-of-fold predictions gathered over its folds, and the error analysis of
class probabilities: per-class F1, error correlation and confused pairs, as figures and numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.reports.figures import save
from mlcycle.selection.compare import analysis


def out_of_fold_probs(records: list[dict[str, Any]], size: int, classes: int) -> np.ndarray | None:
    """A candidate's probabilities for every pool row, each from the fold model that did not
    train on it; None unless every fold finished."""
    if any(r.get("status") != "finished" for r in records):
        return None
    probs = np.full((size, classes), np.nan, dtype=np.float32)
    for record in records:
        probs[record["rows"]] = record["probs"]
    return None if np.isnan(probs).any() else probs


def out_of_fold_values(records: list[dict[str, Any]], size: int) -> np.ndarray | None:
    """A candidate's predicted value for every pool row, from the fold model that did not train
    on it; None unless every fold finished."""
    if any(r.get("status") != "finished" for r in records):
        return None
    values = np.full(size, np.nan)
    for record in records:
        values[record["rows"]] = record["pred"]
    return None if np.isnan(values).any() else values


def error_analysis(oof: dict[str, np.ndarray], pool: Any, figures: Path) -> dict[str, Any]:
    """Per-class F1 and error correlation of the candidates' probabilities (figures), and the
    class pairs they confuse most."""
    names, target = pool.class_names, pool.target
    table = analysis.per_class_f1(oof, target, names)
    save(analysis.per_class_f1_figure(table, names), figures / "per_class_f1.png")
    correlation = analysis.error_correlation(oof, target)
    save(analysis.error_correlation_figure(correlation), figures / "error_correlation.png")
    return {
        "per_class_f1": table,
        "confused_pairs": analysis.confused_pairs(oof, target, names),
        "error_correlation": correlation,
    }
