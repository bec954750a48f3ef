"""Performance from feedback for a model that predicts numbers (a regression table): each
window's RMSE, MAE and R2 on the rows whose feedback is a number, with percentile bootstrap
intervals (``scipy.stats.bootstrap``, paired resamples of the rows, fixed seed), against the
reference's val values. Registered in ``checks.PREDICTION_CHECKS`` by what the reference's
val predictions hold (``rmse``), as the classes' accuracy is."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from mlcycle.monitor.drift import BOOTSTRAP, Z95
from mlcycle.monitor.record import check


def _number(value: Any) -> float | None:
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


def feedback_pairs(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) of the rows whose feedback label and prediction are both numbers."""
    pairs = [(_number(r.get("label")), _number(r.get("predicted"))) for r in rows]
    kept = [(t, p) for t, p in pairs if t is not None and p is not None]
    return np.asarray([t for t, _ in kept]), np.asarray([p for _, p in kept])


def rmse(true: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sqrt(((true - pred) ** 2).mean(axis=axis))


def mae(true: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.abs(true - pred).mean(axis=axis)


def r2(true: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    """1 - SSE / SST (SST of the window's own labels; 0 spread counts as 1)."""
    sse = ((true - pred) ** 2).sum(axis=axis)
    sst = ((true - true.mean(axis=axis, keepdims=True)) ** 2).sum(axis=axis)
    return 1.0 - sse / np.where(sst > 0, sst, 1.0)


METRICS = {"rmse": rmse, "mae": mae, "r2": r2}


def interval(true: np.ndarray, pred: np.ndarray, name: str) -> tuple[float, float]:
    """Percentile bootstrap interval of one metric (a single row: its value)."""
    metric = METRICS[name]
    if len(true) < 2:
        value = float(metric(true, pred))
        return value, value
    found = stats.bootstrap(
        (true, pred), metric, paired=True, vectorized=True, n_resamples=BOOTSTRAP,
        confidence_level=2 * float(stats.norm.cdf(Z95)) - 1, method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval  # fmt: skip
    return float(found.low), float(found.high)


def limit_of(name: str, reference: float, t: dict) -> float:
    """An error ``error_rise`` (a share) above the reference, R2 ``r2_drop`` below it."""
    return reference - t["r2_drop"] if name == "r2" else reference * (1 + t["error_rise"])


def past(name: str, found: tuple[float, float, float], reference: float, limit: float) -> bool:
    """The value past the limit, and its whole interval past the reference."""
    value, low, high = found
    if name == "r2":
        return value < limit and high < reference
    return value > limit and low > reference


def value_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """RMSE, MAE and R2 on the rows with a number as feedback, against val's."""
    true, pred = feedback_pairs(rows)
    judged = len(true) >= t["min_feedback"] and len(true) > 0
    checks = []
    for name, metric in METRICS.items():
        reference = predictions.get(name)
        if reference is None:
            continue
        limit = round(limit_of(name, reference, t), 6)
        found = None
        if len(true):
            found = (float(metric(true, pred)), *interval(true, pred, name))
        checks.append(
            check(
                name, "feedback", None if found is None else round(found[0], 6), limit,
                rows=len(true), reference=reference,
                low=None if found is None else round(found[1], 6),
                high=None if found is None else round(found[2], 6), judged=judged,
                flagged=found is not None and past(name, found, reference, limit),
            )
        )  # fmt: skip
    return checks
