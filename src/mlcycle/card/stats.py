"""The model card's numbers: Wilson for accuracy and a bootstrap for macro F1 (scipy.stats),
per-class rows from per-image predictions, and the exported model's latency."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

RESAMPLES = 1000
CHUNK = 100  # resamples at a time: memory stays at CHUNK x images


def wilson(correct: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``correct / n`` (valid near 0 and 1,
    unlike the normal approximation); scipy's ``binomtest(...).proportion_ci``."""
    if n <= 0:
        return (math.nan, math.nan)
    interval = stats.binomtest(correct, n).proportion_ci(0.95, method="wilson")
    return (float(interval.low), float(interval.high))


def macro_f1(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """Macro F1 of each row of ``pred``/``target`` (R x N class indices), as torchmetrics
    computes it: the mean over classes that occur in the target or the predictions."""
    pred, target = np.atleast_2d(pred), np.atleast_2d(target)
    tp = np.stack([((pred == c) & (target == c)).sum(1) for c in range(k)], 1)
    fp = np.stack([((pred == c) & (target != c)).sum(1) for c in range(k)], 1)
    fn = np.stack([((pred != c) & (target == c)).sum(1) for c in range(k)], 1)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    present = denominator > 0
    return (f1 * present).sum(1) / np.maximum(present.sum(1), 1)


def bootstrap_macro_f1(
    pred: np.ndarray, target: np.ndarray, k: int, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of macro F1, resampling images with replacement
    (scipy's ``bootstrap``, paired: an image keeps its prediction and its label)."""
    if len(target) < 2:  # nothing to resample: the interval is the value
        value = float(macro_f1(pred, target, k)[0])
        return (value, value)
    result = stats.bootstrap(
        (pred, target),
        lambda p, t, axis=-1: macro_f1(p, t, k),
        n_resamples=resamples,
        batch=CHUNK,
        vectorized=True,
        paired=True,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return (float(interval.low), float(interval.high))


def per_class_rows(pred: np.ndarray, target: np.ndarray, names: list[str]) -> dict[str, dict]:
    """``{class: {precision, recall, f1, support}}`` from per-image predictions."""
    rows = {}
    for c, name in enumerate(names):
        tp = int(((pred == c) & (target == c)).sum())
        predicted, support = int((pred == c).sum()), int((target == c).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * tp / (predicted + support) if predicted + support else 0.0
        rows[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return rows


def onnx_latency_ms(path: Path, shape: list[Any], runs: int = 50) -> dict[str, float] | None:
    """Median and 95th-percentile milliseconds of one image (batch 1) through the ONNX model
    on one CPU thread; ``None`` when onnxruntime cannot run it."""
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        dims = [1 if not isinstance(d, int) else d for d in shape]
        dims[0] = 1
        x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        for _ in range(5):
            session.run(None, {name: x})
        times = []
        for _ in range(runs):
            clock = time.perf_counter()
            session.run(None, {name: x})
            times.append((time.perf_counter() - clock) * 1000)
    except Exception:  # a model this machine cannot run: the card says so instead
        return None
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}
