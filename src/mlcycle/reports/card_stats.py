"""Confidence intervals for the model card: Wilson for accuracy, a bootstrap for macro F1."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

Z95 = 1.959964  # two-sided 95%
RESAMPLES = 1000
CHUNK = 100  # resamples at a time: memory stays at CHUNK x images


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (valid near 0 and 1, unlike
    the normal approximation)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = correct / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, center - half), min(1.0, center + half))


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
    """95% percentile bootstrap interval of macro F1, resampling images with replacement."""
    rng = np.random.default_rng(seed)
    n, values = len(target), []
    for start in range(0, resamples, CHUNK):
        rows = rng.integers(0, n, size=(min(CHUNK, resamples - start), n))
        values.append(macro_f1(pred[rows], target[rows], k))
    low, high = np.percentile(np.concatenate(values), [2.5, 97.5])
    return float(low), float(high)


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


def predictions(run: Any, split: str) -> dict[str, np.ndarray]:
    """Per-image predicted and true classes of ``run``'s best checkpoint on ``split``
    (classification), recomputed with the evaluator's own ``collect``."""
    from mlcycle.evaluators.classification import collect

    model = run.load_model("best")
    out = collect(model, run.load_data(num_workers=0), split)
    return {"pred": out["probs"].argmax(1).numpy(), "target": out["target"].numpy()}


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
