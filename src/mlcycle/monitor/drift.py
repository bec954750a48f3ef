"""Drift and performance statistics: pure functions of counts, values and labels.

* PSI (population stability index) of two binned distributions, epsilon-smoothed, and the PSI
  that sampling noise alone reaches in a window of n rows (simulated).
* Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) against the reference sample.
* Chi-square test of predicted-class counts against the reference's class shares, expected
  counts scaled to the window, cells expected below 5 merged.
* Mean shift with its z score (Welch's standard error).
* Accuracy with a Wilson score interval (``scipy.stats.binomtest``); macro F1 with a
  percentile bootstrap interval (``scipy.stats.bootstrap``, 1,000 paired resamples of the
  window's rows, fixed seed): F1 is not a proportion, so no closed form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

EPSILON = 1e-4  # smallest share a bin gets in PSI, so an empty bin costs ln(share / 1e-4)
Z95 = 1.959964  # two-sided 95 %
MIN_EXPECTED = 5.0  # chi-square cells expected below this are merged
BOOTSTRAP = 1000


def _shares(counts: np.ndarray, eps: float) -> np.ndarray:
    """Shares along the last axis, floored at ``eps`` and renormalized."""
    total = counts.sum(axis=-1, keepdims=True)
    shares = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    shares = np.maximum(shares, eps)
    return shares / shares.sum(axis=-1, keepdims=True)


def _psi(reference_counts: np.ndarray, counts: np.ndarray, eps: float) -> np.ndarray:
    ref, cur = _shares(reference_counts, eps), _shares(counts, eps)
    return np.sum((cur - ref) * np.log(cur / ref), axis=-1)


def psi(reference_counts: Sequence[float], counts: Sequence[float], eps: float = EPSILON) -> float:
    """Population stability index: sum of (actual - expected) * ln(actual / expected) over the
    bins, shares floored at ``eps`` (then renormalized)."""
    return float(_psi(np.asarray(reference_counts, float), np.asarray(counts, float), eps))


def psi_noise(
    reference_counts: Sequence[float],
    rows: int,
    quantile: float = 0.99,
    draws: int = 2000,
    eps: float = EPSILON,
) -> float:
    """The PSI a window of ``rows`` rows drawn from the reference's own distribution exceeds
    with probability ``1 - quantile``, simulated (fixed seed): bin shares drawn from a
    Dirichlet on the reference counts (at least 1 a bin: a value beyond the reference's range
    has probability about 1 / (m + 1)), then the window's counts from a multinomial.

    Small windows reach a large PSI by chance alone, mostly through empty bins (10 bins, 35
    rows: about 1.7 at the 99 % quantile; 1,000 rows: about 0.1), so a PSI is only flagged
    above this as well."""
    if rows <= 0:
        return math.inf
    ref = np.asarray(reference_counts, float)
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.maximum(ref, 1.0), size=draws)
    counts = rng.multinomial(rows, shares).astype(float)
    return float(np.quantile(_psi(ref, counts, eps), quantile))


def ks(values: Sequence[float], reference_sample: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic (largest CDF distance) and p-value."""
    result = stats.ks_2samp(np.asarray(values, float), np.asarray(reference_sample, float))
    return float(result.statistic), float(result.pvalue)


def merge_small(
    observed: np.ndarray, expected: np.ndarray, min_expected: float = MIN_EXPECTED
) -> tuple[np.ndarray, np.ndarray]:
    """Cells expected below ``min_expected`` pooled into one; a pool still too small joins the
    smallest large cell."""
    small = expected < min_expected
    if not small.any():
        return observed, expected
    obs, exp = list(observed[~small]), list(expected[~small])
    pooled_obs, pooled_exp = observed[small].sum(), expected[small].sum()
    if pooled_exp >= min_expected or not exp:
        obs.append(pooled_obs)
        exp.append(pooled_exp)
    else:
        smallest = int(np.argmin(exp))
        obs[smallest] += pooled_obs
        exp[smallest] += pooled_exp
    return np.asarray(obs, float), np.asarray(exp, float)


def class_counts(labels: Sequence[str], classes: Sequence[str]) -> dict[str, int]:
    """Counts per class in ``classes`` order; labels not among them follow."""
    counts = {c: 0 for c in classes}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def class_chi2(
    counts: Mapping[str, int], reference: Mapping[str, int], smoothing: float = 0.5
) -> dict[str, Any]:
    """Chi-square goodness of fit of a window's predicted-class counts to the reference shares
    (reference counts + ``smoothing``, so a class never predicted on val is not impossible).
    ``w`` is Cohen's effect size sqrt(chi2 / n): with thousands of rows a tiny shift is
    significant, ``w`` says whether it is large."""
    classes = list(reference) + [c for c in counts if c not in reference]
    ref = np.asarray([reference.get(c, 0) for c in classes], float) + smoothing
    observed = np.asarray([counts.get(c, 0) for c in classes], float)
    n = observed.sum()
    if n == 0:
        return {"statistic": None, "p": None, "cells": 0, "w": None}
    obs, exp = merge_small(observed, ref / ref.sum() * n)
    if len(obs) < 2:
        return {"statistic": None, "p": None, "cells": len(obs), "w": None}
    statistic, p = stats.chisquare(obs, exp)
    return {
        "statistic": float(statistic),
        "p": float(p),
        "cells": len(obs),
        "w": math.sqrt(float(statistic) / n),
    }


def mean_shift(values: Sequence[float], ref_mean: float, ref_std: float, ref_n: int) -> dict:
    """Difference of the window's mean from the reference's, and its z score."""
    arr = np.asarray(values, float)
    delta = float(arr.mean()) - ref_mean
    se = math.sqrt(float(arr.var(ddof=1) if arr.size > 1 else 0.0) / arr.size + ref_std**2 / ref_n)
    z = delta / se if se > 0 else (0.0 if delta == 0 else math.copysign(math.inf, delta))
    return {"mean": float(arr.mean()), "delta": delta, "z": z}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (good at small n and near 0 or 1), at the
    two-sided level of ``z`` (``scipy.stats.binomtest``)."""
    if n == 0:
        return 0.0, 1.0
    level = 2 * float(stats.norm.cdf(z)) - 1
    found = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return max(0.0, float(found.low)), min(1.0, float(found.high))


def _f1_scores(true: np.ndarray, pred: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Per-class true positives, support, predicted counts and F1 = 2tp / (support + predicted)."""
    tp = np.bincount(true[true == pred], minlength=k).astype(float)
    support = np.bincount(true, minlength=k).astype(float)
    predicted = np.bincount(pred, minlength=k).astype(float)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return tp, support, predicted, f1


def _macro(support: np.ndarray, predicted: np.ndarray, f1: np.ndarray) -> float:
    """Mean F1 over the classes that occur in the labels or the predictions."""
    present = (support + predicted) > 0
    return float(f1[present].mean()) if present.any() else 0.0


def _encode(true: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None):
    names = list(labels) if labels is not None else sorted(set(true) | set(pred))
    lookup = {name: i for i, name in enumerate(names)}
    for name in [*true, *pred]:
        if name not in lookup:
            lookup[name] = len(names)
            names.append(name)
    codes = [np.asarray([lookup[v] for v in side], dtype=np.int64) for side in (true, pred)]
    return names, codes[0], codes[1]


def classification_metrics(
    true: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro F1 (over the classes in ``true`` or ``pred``, as scikit-learn's
    default) and per-class support, precision, recall (the class's accuracy) and F1."""
    names, t, p = _encode(true, pred, labels)
    tp, support, predicted, f1 = _f1_scores(t, p, len(names))
    per_class = {
        name: {
            "support": int(support[i]),
            "precision": round(float(tp[i] / predicted[i]), 6) if predicted[i] else 0.0,
            "recall": round(float(tp[i] / support[i]), 6) if support[i] else 0.0,
            "f1": round(float(f1[i]), 6),
        }
        for i, name in enumerate(names)
    }
    return {
        "rows": len(t),
        "accuracy": round(float((t == p).mean()), 6) if len(t) else None,
        "macro_f1": round(_macro(support, predicted, f1), 6) if len(t) else None,
        "per_class": per_class,
    }


def _macro_f1(k: int) -> Any:
    """Macro F1 of (true, predicted) codes over ``k`` classes, for ``scipy.stats.bootstrap``."""

    def statistic(true: np.ndarray, pred: np.ndarray) -> float:
        _, support, predicted, f1 = _f1_scores(true, pred, k)
        return _macro(support, predicted, f1)

    return statistic


def f1_interval(true: np.ndarray, pred: np.ndarray, k: int, z: float = Z95) -> tuple[float, float]:
    """Percentile bootstrap interval of macro F1 (:data:`BOOTSTRAP` paired resamples of the
    rows, fixed seed; ``scipy.stats.bootstrap``). One row: the interval is its value."""
    statistic = _macro_f1(k)
    if len(true) < 2:
        value = statistic(true, pred)
        return value, value
    found = stats.bootstrap(
        (true, pred),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=BOOTSTRAP,
        confidence_level=2 * float(stats.norm.cdf(z)) - 1,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    interval = found.confidence_interval
    return float(interval.low), float(interval.high)


def performance(true: Sequence[str], pred: Sequence[str], z: float = Z95) -> dict[str, Any]:
    """Accuracy with its Wilson interval, macro F1 with a bootstrap percentile interval."""
    names, t, p = _encode(true, pred, None)
    n, k = len(t), len(names)
    if n == 0:
        return {"rows": 0}
    correct = int((t == p).sum())
    low, high = wilson(correct, n, z)
    _, support, predicted, f1 = _f1_scores(t, p, k)
    f1_low, f1_high = f1_interval(t, p, k, z)
    return {
        "rows": n,
        "accuracy": correct / n,
        "accuracy_low": low,
        "accuracy_high": high,
        "macro_f1": _macro(support, predicted, f1),
        "f1_low": f1_low,
        "f1_high": f1_high,
    }
