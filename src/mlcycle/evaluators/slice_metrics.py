"""The gate's metric on any subset of per-item predictions, vectorized over bootstrap resamples.

Every function takes ``(truth, guess, axis)`` arrays whose last axis holds the items (a batch of
resamples in front), so :func:`scipy.stats.bootstrap` can call it once per batch. Class metrics
take class indices (the predicted class is the highest probability); macro averages run over
``labels``, the classes present in the slice, so a slice without a class is not scored on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Metric = Callable[..., np.ndarray]


def _counts(truth: np.ndarray, guess: np.ndarray, labels: Sequence[int], axis: int):
    tp, fp, fn = [], [], []
    for k in labels:
        is_true, is_guess = truth == k, guess == k
        tp.append((is_true & is_guess).sum(axis))
        fp.append((~is_true & is_guess).sum(axis))
        fn.append((is_true & ~is_guess).sum(axis))
    return np.stack(tp, -1), np.stack(fp, -1), np.stack(fn, -1)


def _ratio(top: np.ndarray, bottom: np.ndarray, empty: float) -> np.ndarray:
    """``top / bottom`` with ``empty`` where ``bottom`` is 0."""
    return np.where(bottom > 0, top / np.maximum(bottom, 1), empty)


def _macro(values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        kept = np.where(np.isnan(values), 0.0, values).sum(-1)
        return kept / np.maximum((~np.isnan(values)).sum(-1), 1)


def f1(truth: np.ndarray, guess: np.ndarray, labels: Sequence[int], axis: int = -1) -> np.ndarray:
    tp, fp, fn = _counts(truth, guess, labels, axis)
    return _macro(_ratio(2 * tp, 2 * tp + fp + fn, np.nan))  # absent from a resample: skipped


def precision(truth, guess, labels: Sequence[int], axis: int = -1) -> np.ndarray:
    tp, fp, fn = _counts(truth, guess, labels, axis)
    present = np.where(tp + fn > 0, _ratio(tp, tp + fp, 0.0), np.nan)
    return _macro(present)


def recall(truth, guess, labels: Sequence[int], axis: int = -1) -> np.ndarray:
    tp, fp, fn = _counts(truth, guess, labels, axis)
    return _macro(_ratio(tp, tp + fn, np.nan))


def acc(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    return (truth == guess).mean(axis)


def error(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    return 1.0 - acc(truth, guess, labels, axis)


def rmse(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    return np.sqrt(((truth - guess) ** 2).mean(axis))


def mse(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    return ((truth - guess) ** 2).mean(axis)


def mae(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    return np.abs(truth - guess).mean(axis)


def r2(truth, guess, labels: Sequence[int] = (), axis: int = -1) -> np.ndarray:
    spread = ((truth - truth.mean(axis, keepdims=True)) ** 2).sum(axis)
    with np.errstate(all="ignore"):
        return 1.0 - ((truth - guess) ** 2).sum(axis) / spread


CLASS_METRICS: dict[str, Metric] = {
    "f1": f1,
    "acc": acc,
    "precision": precision,
    "recall": recall,
    "error": error,
}
VALUE_METRICS: dict[str, Metric] = {"rmse": rmse, "mse": mse, "mae": mae, "r2": r2}


def metric_for(name: str, scores: np.ndarray) -> Metric | None:
    """The metric ``name`` for these scores (class probabilities ``(N, C)`` or values ``(N,)``),
    or ``None`` when it cannot be computed per item subset (IoU, mAP)."""
    table = CLASS_METRICS if scores.ndim == 2 else VALUE_METRICS
    return table.get(name)


def guesses(scores: np.ndarray) -> np.ndarray:
    """What the model answered per item: the class index of probabilities, else the value."""
    return scores.argmax(axis=1) if scores.ndim == 2 else scores.astype(float)


def supported(scores: np.ndarray) -> list[str]:
    return list(CLASS_METRICS if scores.ndim == 2 else VALUE_METRICS)
