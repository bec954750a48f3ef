"""compare.py's dummy baselines, scored on the same folds as the candidates.

A comparison whose folds keep predictions (``probs``, ``pred``) fits each baseline of that form
on every fold's training rows (:mod:`mlcycle.callbacks.baselines`: majority and stratified,
mean and median) and scores it on the fold's rows with the comparison's own ``score_fold``.
One scored by its fold runs (segmentation, detection) reads the baselines each fold run scored
on its val split, the fold (``Task.baselines``, kept in its ``metrics.json`` diagnosis).

The leaderboard carries them as rows of ``kind: baseline`` (never ranked, never short-listed),
and its notes name each candidate that does not beat the strongest one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from mlcycle.callbacks.baselines import class_probs, not_beaten, values

FoldScores = dict[str, list[dict[str, Any]]]  # baseline name -> one score dict per fold

# the prediction form a comparison keeps -> its baselines, fitted on a fold's training targets
DUMMIES: dict[str, Callable[[np.ndarray, int, int], dict[str, np.ndarray]]] = {
    "probs": class_probs,
    "pred": lambda train, n, num_classes: values(train, n),
}


def fold_baselines(comparison: Any, results: dict[str, list[dict]]) -> FoldScores:
    """Per baseline, its scores on every fold (empty when none is known)."""
    dummy = DUMMIES.get(comparison.predictions or "")
    if dummy is None:
        return from_runs(comparison, results)
    pool, found = comparison.pool, {}
    for fold in range(comparison.spec.folds):
        train, rows = pool.fold_rows(fold)
        predicted = dummy(pool.target[train], len(rows), len(pool.class_names))
        for name, prediction in predicted.items():
            scores = comparison.score_fold(prediction, pool.target[rows])
            found.setdefault(name, []).append(scores)
    return found


def from_runs(comparison: Any, results: dict[str, list[dict]]) -> FoldScores:
    """The baselines the fold runs of the first candidate with every fold finished scored on
    their val split (the ``values.baselines`` of a diagnosis finding in ``metrics.json``)."""
    for candidate in comparison.spec.candidates:
        records = results.get(candidate.name) or []
        done = [r for r in records if r.get("status") == "finished"]
        if len(done) < comparison.spec.folds or not comparison.trains_runs(candidate):
            continue
        per_fold = [run_baselines(comparison.fold_dir(candidate, r["fold"])) for r in done]
        if all(per_fold):
            return {n: [fold[n] for fold in per_fold] for n in per_fold[0]}
    return {}


def run_baselines(run_dir: Any) -> dict[str, dict[str, float]]:
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        return {}
    for finding in json.loads(metrics.read_text()).get("diagnosis", []):
        found = finding.get("values", {}).get("baselines")
        if isinstance(found, dict):
            return found
    return {}


def baseline_rows(comparison: Any, results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One leaderboard row per baseline (``kind: baseline``, family ``dummy``), on the metric
    the candidates are ranked by; none for a baseline without it."""
    key, mode = comparison.score_key()
    rows = []
    for name, folds in comparison.baselines(results).items():
        scores = [f.get(key) for f in folds]
        if not scores or any(s is None for s in scores):
            continue
        rows.append(
            {
                "candidate": name,
                "kind": "baseline",
                "family": "dummy",
                "metric": f"val/{key}",
                "mean": round(float(np.mean(scores)), 6),
                "std": round(float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0, 6),
                "folds": [round(float(s), 6) for s in scores],
                "mode": mode,
            }
        )
    return rows


def with_baselines(
    rows: list[dict[str, Any]], baselines: list[dict[str, Any]], mode: str
) -> list[dict[str, Any]]:
    """The ranked candidates (``kind: candidate``) with the baselines placed where their mean
    falls, unranked; the failed candidates last."""
    for row in rows:
        row.setdefault("kind", "candidate")
    done = [r for r in rows if r.get("mean") is not None]
    failed = [r for r in rows if r.get("mean") is None]
    sign = -1 if mode == "max" else 1
    board = sorted(done + [{**b, "rank": ""} for b in baselines], key=lambda r: sign * r["mean"])
    return board + failed


def baseline_notes(rows: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> list[str]:
    """The leaderboard's words: the baselines' means, then one line per candidate that does
    not beat the strongest of them."""
    if not baselines:
        return []
    metric, mode = baselines[0]["metric"], baselines[0]["mode"]
    means = ", ".join(f"{b['candidate']} {b['mean']:.4f}" for b in baselines)
    notes = [f"Baselines ({metric} on the same folds, never short-listed): {means}."]
    found = {b["candidate"]: {metric.split("/")[-1]: b["mean"]} for b in baselines}
    for row in rows:
        if row.get("mean") is not None:
            line = not_beaten(f"candidate {row['candidate']}", metric, row["mean"], found, mode)
            notes += [f"{line}."] if line else []
    return notes
