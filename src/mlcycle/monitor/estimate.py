"""Performance without labels: confidence-based performance estimation (CBPE, as NannyML's).

Each served prediction of a class is right with the probability its calibrated confidence
gives. Summed over a window's rows, the calibrated probabilities give the expected accuracy
(their mean at the predicted class) and the expected confusion counts of each class, hence
the expected macro F1. This holds while the calibration holds: under covariate shift (new
inputs, harder items, other class shares), not when the same input now means another class
(concept shift; only feedback shows that).

Calibration, in this order:

* the model's own (``model.json`` ``output.calibration``, e.g. a temperature that
  ``export.py --calibrate`` put inside the graph): served probabilities are used as they are;
* else the reference's val reliability (:func:`reliability`, written at export): histogram
  binning of the top-class confidence against correctness on val, for all rows and for the
  rows of each predicted class. A served confidence moves by the gap (val accuracy minus
  val mean confidence) of its bin among its predicted class's val rows, shrunk by
  :data:`SHRINK` pseudo-rows toward the class's overall gap, itself shrunk toward val's,
  itself toward none: a bin val barely saw moves as the class or the whole of val does;
* else none (an old reference.json): the record says so.

The interval is where the measured metric should fall if the calibration holds: labels
drawn :data:`DRAWS` times from the calibrated probabilities (fixed seed), the metric of each
draw, its 2.5 and 97.5 percentiles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.monitor.record import check

BINS = 20  # equal-width confidence bins on [0, 1]
SHRINK = 10.0  # pseudo-rows pulling a bin's correction toward none
DRAWS = 500
LEVEL = 0.95
# The objective's metric (its name without the split) -> the estimated metric it names
OBJECTIVE_METRICS = {"acc": "accuracy", "accuracy": "accuracy", "f1": "macro_f1"}
OBJECTIVE_METRICS["macro_f1"] = "macro_f1"


def _bins(conf: np.ndarray, right: np.ndarray, edges: np.ndarray) -> dict[str, list]:
    """Rows, mean confidence and rows predicted right per bin of ``edges``."""
    bins = len(edges) - 1
    at = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows = np.bincount(at, minlength=bins)
    sums = np.bincount(at, weights=conf, minlength=bins)
    mean = np.divide(sums, rows, out=np.zeros(bins), where=rows > 0)
    return {
        "rows": [int(n) for n in rows],
        "confidence": [round(float(m), 6) for m in mean],
        "correct": [int(n) for n in np.bincount(at, weights=right, minlength=bins)],
    }


def reliability(
    confidence: Any, correct: Any, predicted: Any = None, bins: int = BINS
) -> dict[str, Any]:
    """Val's top-class reliability per equal-width confidence bin (rows, mean confidence, rows
    predicted right), of all rows and of the rows of each predicted class (for
    ``reference.json``; :func:`calibrate` applies it)."""
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    found = {
        "method": "histogram binning of the top-class confidence on val",
        "edges": [round(float(e), 6) for e in edges],
        **_bins(conf, right, edges),
    }
    if predicted is not None:
        names = np.asarray([str(p) for p in predicted])
        found["classes"] = {
            str(name): _bins(conf[names == name], right[names == name], edges)
            for name in sorted(set(names.tolist()))
        }
    return found


def val_reliability(confidence: list[float], labels: list, predicted: list[str]) -> dict:
    """:func:`reliability` of the val rows that have a label."""
    kept = [(c, str(t) == p, p) for c, t, p in zip(confidence, labels, predicted, strict=True) if t]
    return reliability([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept])


def _shifts(table: dict[str, list], prior: float, shrink: float) -> tuple[float, np.ndarray]:
    """The overall gap (accuracy minus mean confidence) of ``table``, shrunk by ``shrink``
    pseudo-rows toward ``prior``, and each bin's gap shrunk toward that overall gap."""
    rows = np.asarray(table["rows"], dtype=np.float64)
    mean = np.asarray(table["confidence"], dtype=np.float64)
    right = np.asarray(table["correct"], dtype=np.float64)
    overall = ((right - rows * mean).sum() + shrink * prior) / (rows.sum() + shrink)
    gap = np.divide(right - rows * mean, rows, out=np.zeros_like(mean), where=rows > 0)
    return float(overall), (rows * gap + shrink * overall) / (rows + shrink)


def calibrate(
    confidence: np.ndarray,
    found: dict[str, Any],
    predicted: list[str] | None = None,
    shrink: float = SHRINK,
) -> np.ndarray:
    """Top-class confidences moved by their val bin's gap (accuracy minus mean confidence):
    the bin of their predicted class's rows, shrunk toward that class's overall gap, itself
    shrunk toward val's overall gap, itself shrunk toward none (``shrink`` pseudo-rows each)."""
    edges = np.asarray(found["edges"], dtype=np.float64)
    at = np.clip(np.digitize(confidence, edges[1:-1]), 0, len(edges) - 2)
    overall, shift = _shifts(found, 0.0, shrink)
    moved = shift[at]
    by_class = found.get("classes") or {}
    if predicted is not None and by_class:
        names = np.asarray(predicted)
        for name in set(predicted) & set(by_class):
            mine = names == name
            moved[mine] = _shifts(by_class[name], overall, shrink)[1][at[mine]]
    return np.clip(confidence + moved, 0.0, 1.0)


def _top_k(row: dict[str, Any]) -> list[dict[str, Any]]:
    found = row.get("top_k")
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except ValueError:
            return []
    return found if isinstance(found, list) else []


def served_probabilities(
    rows: list[dict[str, Any]], classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's predicted class index and class probabilities, from the store's
    ``predicted``, ``confidence`` and ``top_k`` (images keep the top 3 classes: the mass left
    is spread evenly over the classes not listed). Rows without a known predicted class or a
    confidence are left out."""
    lookup = {name: i for i, name in enumerate(classes)}
    k = len(classes)
    predicted, probabilities = [], []
    for row in rows:
        at, conf = lookup.get(str(row.get("predicted"))), row.get("confidence")
        if at is None or conf is None or not np.isfinite(conf):
            continue
        p = np.full(k, np.nan)
        for entry in _top_k(row):
            if isinstance(entry, dict) and str(entry.get("class")) in lookup:
                p[lookup[str(entry["class"])]] = float(entry.get("probability") or 0.0)
        p[at] = float(conf)
        unknown = np.isnan(p)
        if unknown.any():
            p[unknown] = max(1.0 - float(np.nansum(p)), 0.0) / unknown.sum()
        predicted.append(at)
        probabilities.append(p / p.sum() if p.sum() > 0 else np.full(k, 1.0 / k))
    return np.asarray(predicted, dtype=np.int64), np.asarray(probabilities).reshape(-1, k)


def recalibrated(
    predicted: np.ndarray, probs: np.ndarray, found: dict | None, classes: list[str]
) -> np.ndarray:
    """The probabilities with the top class calibrated by ``found`` (val's reliability; None:
    as they are) and the other classes scaled to fill the rest."""
    if found is None or not len(predicted):
        return probs
    rows = np.arange(len(predicted))
    top = probs[rows, predicted]
    new_top = calibrate(top, found, [classes[i] for i in predicted])
    rest = 1.0 - top
    scale = np.divide(1.0 - new_top, rest, out=np.zeros_like(rest), where=rest > 1e-12)
    out = probs * scale[:, None]
    even = rest <= 1e-12  # the top class had everything: the rest spread evenly
    if even.any() and probs.shape[1] > 1:
        out[even] = ((1.0 - new_top[even]) / (probs.shape[1] - 1))[:, None]
    out[rows, predicted] = new_top
    return out


def expected_metrics(predicted: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Expected accuracy, and macro F1 from the expected confusion counts of each class: true
    positives are the predicted class's probability, false positives the rest of it, false
    negatives a class's probability where another was predicted. A class counts in the macro
    mean as the measured one counts it: when predicted, else with the probability it occurs."""
    n, k = probs.shape
    mine = np.zeros((n, k), dtype=bool)
    mine[np.arange(n), predicted] = True
    tp = (probs * mine).sum(axis=0)
    fp = ((1.0 - probs) * mine).sum(axis=0)
    fn = (probs * ~mine).sum(axis=0)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    absent = np.exp(np.log1p(-np.clip(probs, 0.0, 1.0 - 1e-12)).sum(axis=0))
    weight = np.where(mine.any(axis=0), 1.0, 1.0 - absent)
    return {
        "accuracy": float(probs[np.arange(n), predicted].mean()),
        "macro_f1": float((weight * f1).sum() / weight.sum()) if weight.sum() > 0 else 0.0,
    }


def _draw_labels(probs: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` label sets (draws x rows), each row's label drawn from its probabilities."""
    n, k = probs.shape
    cumulative = np.cumsum(probs, axis=1)
    chunk = max(1, 2_000_000 // max(n * k, 1))  # draws at a time: bounded memory
    found = []
    for start in range(0, draws, chunk):
        u = rng.random((min(chunk, draws - start), n, 1)) * cumulative[None, :, -1:]
        found.append((cumulative[None, :, :] < u).sum(axis=2))
    return np.minimum(np.concatenate(found), k - 1)


def drawn_metrics(predicted: np.ndarray, probs: np.ndarray, draws: int = DRAWS) -> dict:
    """Accuracy and macro F1 (over the classes labelled or predicted, as measured) of
    ``draws`` label sets drawn from ``probs`` (fixed seed)."""
    n, k = probs.shape
    true = _draw_labels(probs, draws, np.random.default_rng(0))
    flat = (np.arange(draws)[:, None] * k + true).ravel()
    right = (true == predicted[None, :]).ravel()
    tp = np.bincount(flat[right], minlength=draws * k).reshape(draws, k)
    support = np.bincount(flat, minlength=draws * k).reshape(draws, k)
    counted = support + np.bincount(predicted, minlength=k)[None, :]
    f1 = np.divide(2.0 * tp, counted, out=np.zeros((draws, k)), where=counted > 0)
    macro = f1.sum(axis=1) / (counted > 0).sum(axis=1)
    return {"accuracy": right.reshape(draws, n).mean(axis=1), "macro_f1": macro}


def estimate(rows: list[dict], classes: list[str], found: dict | None) -> dict[str, Any]:
    """A window's estimated accuracy and macro F1 with their intervals (module docstring)."""
    predicted, probs = served_probabilities(rows, classes)
    if not len(predicted):
        return {"rows": 0}
    probs = recalibrated(predicted, probs, found, classes)
    point, drawn = expected_metrics(predicted, probs), drawn_metrics(predicted, probs)
    tail = (1 - LEVEL) / 2 * 100
    result: dict[str, Any] = {"rows": len(predicted)}
    for name, value in point.items():
        low, high = np.percentile(drawn[name], [tail, 100 - tail])
        result[name] = value
        result[f"{name}_low"], result[f"{name}_high"] = min(low, value), max(high, value)
    return result


def model_facts(model: Path) -> dict[str, Any]:
    """What the estimate needs from ``model.json`` beside ``model``: the objective and the
    model's own calibration (None when absent)."""
    path = model.parent / "model.json"
    meta = json.loads(path.read_text()) if path.is_file() else {}
    output = meta.get("output") or {}
    return {
        "objective": meta.get("objective"),
        "calibration": output.get("calibration") or meta.get("calibration"),
    }


def minimum(name: str, reference: float | None, objective: dict | None, drop: float) -> Any:
    """The lowest acceptable value of ``name``: the objective's ``min`` when it names this
    metric, else the reference's value less ``drop``."""
    objective = objective or {}
    metric = str(objective.get("metric") or "").split("/")[-1]
    wanted = objective.get("min") is not None and objective.get("mode", "max") == "max"
    if wanted and OBJECTIVE_METRICS.get(metric) == name:
        return float(objective["min"]), "objective"
    if reference is None:
        return None, None
    return round(reference - drop, 6), "reference"


def estimate_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Estimated accuracy and macro F1 (subject ``estimate``), flagged below the objective's
    minimum (else the reference less the drop thresholds)."""
    predictions = reference.get("predictions") or {}
    if "classes" not in predictions or "confidence" not in predictions:
        return []
    own = reference.get("calibration")
    found = None if own else predictions.get("reliability")
    method = "the model's own" if own else ("val reliability" if found else "none")
    result = estimate(rows, list(predictions["classes"]), found)
    checks = []
    for name, drop in (("accuracy", t["accuracy_drop"]), ("macro_f1", t["f1_drop"])):
        limit, source = minimum(name, predictions.get(name), reference.get("objective"), drop)
        value = result.get(name)
        checks.append(
            check(
                name, "estimate", None if value is None else round(value, 6), limit,
                rows=result["rows"], reference=predictions.get(name),
                low=_rounded(result.get(f"{name}_low")), high=_rounded(result.get(f"{name}_high")),
                calibration=method, limit_from=source, judged=result["rows"] >= t["min_rows"],
                flagged=value is not None and limit is not None and value < limit,
            )
        )  # fmt: skip
    return checks


def _rounded(value: Any) -> Any:
    return None if value is None else round(float(value), 6)


def _interval_text(c: dict[str, Any]) -> str:
    if c.get("low") is None or c.get("high") is None:
        return f"{c['value']:.3f}"
    return f"{c['value']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"


def performance_text(checks: list[dict[str, Any]]) -> str:
    """A window's metrics from feedback beside their estimates, e.g. ``accuracy: measured
    0.912 [0.850, 0.951] (40 rows), estimated 0.884 [0.840, 0.920]``."""
    parts: dict[str, list[str]] = {}
    for c in checks:
        if c["subject"] not in ("feedback", "estimate") or c.get("value") is None:
            continue
        if c["subject"] == "feedback":
            text = f"measured {_interval_text(c)} ({c['rows']} rows)"
        else:
            text = f"estimated {_interval_text(c)}"
        parts.setdefault(c["check"], []).append(text)
    return "; ".join(f"{name}: {', '.join(found)}" for name, found in parts.items())
