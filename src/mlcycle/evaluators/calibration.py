"""Calibration of a classifier's confidences: expected calibration error (ECE), the
reliability diagram, and temperature scaling.

ECE here is the top-label one of Guo et al. 2017 (and torchmetrics'
``MulticlassCalibrationError(n_bins=15, norm="l1")``): each sample's confidence is its highest
class probability, samples fall in 15 equal-width confidence bins, and ECE is the mean over
samples of |accuracy - mean confidence| of their bin. A binary task is a two-class one.

Temperature scaling divides the logits by one scalar T > 0 fitted on val to minimize the
negative log-likelihood; it never changes the predicted class, only how sure the model says
it is (T > 1: an overconfident model made less sure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BINS = 15
EPS = 1e-12  # probabilities are clipped here before their log


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def log_probs(probs: np.ndarray) -> np.ndarray:
    """Logits of probabilities (their log, clipped at ``EPS``): softmax gives them back."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, None))


def reliability_bins(probs: np.ndarray, target: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Per equal-width confidence bin: its samples, mean confidence and accuracy (None when
    empty), and the ECE over them."""
    probs = np.asarray(probs, dtype=np.float64)
    target = np.asarray(target).astype(int)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == target).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    right_sum = np.bincount(which, weights=correct, minlength=bins)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    accuracy = np.where(filled, right_sum / np.maximum(count, 1), np.nan)
    gaps = np.abs(accuracy - mean_conf)[filled] * count[filled]
    total = max(int(count.sum()), 1)
    return {
        "edges": edges.tolist(),
        "count": count.tolist(),
        "confidence": [None if np.isnan(v) else round(float(v), 6) for v in mean_conf],
        "accuracy": [None if np.isnan(v) else round(float(v), 6) for v in accuracy],
        "ece": float(gaps.sum() / total),
    }


def expected_calibration_error(probs: np.ndarray, target: np.ndarray, bins: int = BINS) -> float:
    """Top-label ECE of class probabilities [N, K] against integer targets [N]."""
    return reliability_bins(probs, target, bins)["ece"]


def nll(logits: np.ndarray, target: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(z)), np.asarray(target).astype(int)].mean())


def fit_temperature(logits: np.ndarray, target: np.ndarray) -> float:
    """The T in [0.05, 20] minimizing the NLL of ``softmax(logits / T)`` (searched on log T)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(
        lambda log_t: nll(logits, target, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(found.x))


def temperature_record(logits: np.ndarray, target: np.ndarray, split: str = "val") -> dict:
    """Fit T on ``logits`` and say what it did there: ECE and NLL before and after."""
    temperature = fit_temperature(logits, target)
    after = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return {
        "temperature": round(temperature, 6),
        "fitted_on": split,
        "samples": int(len(target)),
        "ece_before": round(expected_calibration_error(softmax(logits), target), 6),
        "ece_after": round(expected_calibration_error(after, target), 6),
        "nll_before": round(nll(logits, target), 6),
        "nll_after": round(nll(logits, target, temperature), 6),
        "bins": BINS,
        # T at a bound of its search: val gave too few mistakes (or too many) to fit it
        "at_bound": bool(not 0.051 < temperature < 19.9),
        "val_mistakes": int((np.asarray(logits).argmax(axis=1) != np.asarray(target)).sum()),
    }


def reliability_figure(binned: dict[str, Any], title: str) -> Any:
    """Accuracy against confidence per bin (the gap to the diagonal shaded), and the samples
    per bin below."""
    import matplotlib.pyplot as plt

    edges = np.asarray(binned["edges"])
    width, left = np.diff(edges), edges[:-1]
    acc = np.array([np.nan if v is None else v for v in binned["accuracy"]])
    conf = np.array([np.nan if v is None else v for v in binned["confidence"]])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.bar(left, np.nan_to_num(acc), width, align="edge", edgecolor="black", label="accuracy")
    top.bar(left, np.nan_to_num(conf - acc), width, bottom=np.nan_to_num(acc), align="edge",
            color="tab:red", alpha=0.3, label="gap to confidence")  # fmt: skip
    top.set(ylabel="accuracy", ylim=(0, 1), title=title)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(left, binned["count"], width, align="edge", edgecolor="black", color="tab:grey")
    bottom.set(xlabel="confidence (highest class probability)", ylabel="samples", xlim=(0, 1))
    fig.tight_layout()
    return fig


def calibration_report(
    probs: np.ndarray, target: np.ndarray, split: str, run_dir: Path
) -> dict[str, Any]:
    """``reliability_<split>.png`` in ``run_dir`` and what evaluate.py records: the ECE and the
    bins, and its report line."""
    from mlcycle.reports.figures import save

    binned = reliability_bins(probs, target)
    name = f"reliability_{split}.png"
    title = f"{split} reliability (ECE {binned['ece']:.4f}, {BINS} bins)"
    save(reliability_figure(binned, title), run_dir / name)
    record = {"ece": round(binned["ece"], 6), "bins": BINS, "figure": name, **binned}
    record.pop("edges")
    line = f"  calibration: ECE {binned['ece']:.4f} ({BINS} equal-width bins); {run_dir / name}"
    return {"calibration": record, "line": line}
