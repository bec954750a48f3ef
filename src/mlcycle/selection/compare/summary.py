"""A candidate's leaderboard row from its fold records, against the objective."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcycle.selection.compare.start import candidate_start
from mlcycle.selection.scores import gate_of

VERDICT = {True: "PASS", False: "FAIL", None: "-"}


def mean_per_class_f1(records: list[dict[str, Any]], class_names: list[str]) -> dict[str, float]:
    """Class name -> F1 averaged over the folds' ``f1_per_class`` scores."""
    mean = np.mean([r["scores"]["f1_per_class"] for r in records], axis=0).tolist()
    return dict(zip(class_names, mean, strict=True))


def summarize(candidate: Any, records: list[dict[str, Any]], comparison: Any) -> dict[str, Any]:
    """The candidate's leaderboard row from its fold records; ``line`` for the console."""
    key, mode = comparison.score_key()
    metric = f"val/{key}"
    row: dict[str, Any] = {"candidate": candidate.name, "family": candidate.kind, "metric": metric}
    row["start"] = candidate_start(records)
    failed = [r for r in records if r.get("status") != "finished"]
    if failed:
        row.update(mean=None, std=None, error=f"fold {failed[0]['fold']}: {failed[0]['error']}")
        row["line"] = f"{candidate.name}: failed ({row['error']})"
        return row
    missing = [r["fold"] for r in records if key not in r["scores"]]
    if missing:
        row.update(mean=None, std=None, error=f"fold {missing[0]}: no {metric} in its scores")
        row["line"] = f"{candidate.name}: {row['error']}"
        return row
    values = [r["scores"][key] for r in records]
    row["mean"] = round(float(np.mean(values)), 6)
    row["std"] = round(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, 6)
    row["folds"] = values
    for name in ("fit_s", "latency_ms", "size_mb"):
        measured = [r[name] for r in records if r.get(name) is not None]
        row[name] = round(float(np.mean(measured)), 4) if measured else None
    row["params"] = int(np.mean([r["params"] for r in records]))
    per_class = comparison.per_class_f1(records)
    if per_class:
        row["per_class_f1"] = {k: round(v, 6) for k, v in per_class.items()}
    row["gate"], row["budget"] = gate_of(comparison.objective, metric, row["mean"], per_class, row)
    row["line"] = (
        f"{candidate.name}: {metric} {row['mean']:.4f} +- {row['std']:.4f} over {len(values)} "
        f"folds, {row['latency_ms'] or float('nan'):.3f} ms/{comparison.unit}, gate "
        f"{VERDICT[row['gate']]}, budget {VERDICT[row['budget']]}"
    )
    row["mode"] = mode
    return row
