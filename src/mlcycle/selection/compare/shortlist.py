"""compare.py's shortlist: the few candidates worth ensembling, chosen on their out-of-fold
predictions (greedy forward selection), written as ``shortlist.yaml`` for ensemble.py.

Class probabilities are short-listed by the macro F1 of their mean
(:func:`mlcycle.selection.compare.analysis.shortlist`), predicted values by the RMSE of their
mean (:func:`value_shortlist`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from mlcycle.selection.compare import analysis
from mlcycle.selection.scores import regression_scores

ELIGIBLE_MARGIN = 0.05  # without an objective: within 5 points of the best candidate
RELATIVE_MARGIN = 0.10  # values without an objective: within 10% of the best error
ELIGIBLE_RULE = (
    "those passing the objective's quality gate (metric and per-class minimums), or without "
    "an objective those within 0.05 of the best mean."
)


def eligible(rows: list[dict[str, Any]], oof: dict[str, np.ndarray], mode: str) -> list[str]:
    """Candidates good enough to short-list: those passing the objective's quality gate when
    there is one (else within ``ELIGIBLE_MARGIN`` of the best mean); never one that did not
    learn, however different its errors."""
    done = [r for r in rows if r["candidate"] in oof and r.get("mean") is not None]
    if any(r.get("gate") is not None for r in done):
        return [r["candidate"] for r in done if r.get("gate")]
    if mode == "max":
        best = max(r["mean"] for r in done)
        return [r["candidate"] for r in done if r["mean"] >= best - ELIGIBLE_MARGIN]
    best = min(r["mean"] for r in done)
    return [r["candidate"] for r in done if r["mean"] <= best + ELIGIBLE_MARGIN]


def eligible_values(
    rows: list[dict[str, Any]], values: dict[str, np.ndarray], mode: str
) -> list[str]:
    """Candidates predicting values worth short-listing: those passing the objective's gate
    when it sets one; else, for an error (rmse, mae), those within 10% of the best, a margin
    that does not depend on the target's units; for r2 those within 0.05."""
    done = [r for r in rows if r["candidate"] in values and r.get("mean") is not None]
    if not done or any(r.get("gate") is not None for r in done) or mode == "max":
        return eligible(rows, values, mode) if done else []
    best = min(r["mean"] for r in done)
    return [r["candidate"] for r in done if r["mean"] <= best * (1 + RELATIVE_MARGIN)]


def member_entries(comparison: Any, names: list[str]) -> list[dict[str, Any]]:
    """shortlist.yaml's members: family, fold runs (of a candidate trained by train.py), the
    estimator of a classic one, and the out-of-fold file."""
    by_name = {c.name: c for c in comparison.spec.candidates}
    members = []
    for name in names:
        candidate = by_name[name]
        entry: dict[str, Any] = {"name": name, "family": candidate.kind}
        if comparison.trains_runs(candidate):
            entry["runs"] = [
                str(comparison.fold_dir(candidate, f)) for f in range(comparison.spec.folds)
            ]
        if candidate.kind != "deep":
            entry["estimator"] = candidate.estimator
        entry["oof"] = str(comparison.out / "candidates" / name / "oof.npz")
        members.append(entry)
    return members


def write_shortlist(
    comparison: Any, oof: dict[str, np.ndarray], rows: list[dict[str, Any]], mode: str
) -> dict[str, Any] | None:
    """``shortlist.yaml`` over every family; and, when it holds models fitted here (which
    ensemble.py cannot put in an ONNX graph), ``shortlist_deep.yaml`` over the runs only."""
    names = eligible(rows, oof, mode)
    if not names:
        return None
    chosen = write_one(comparison, {n: oof[n] for n in names}, "shortlist.yaml")
    by_name = {c.name: c for c in comparison.spec.candidates}
    runs = [n for n in names if comparison.trains_runs(by_name[n])]
    fitted_here = any(not comparison.trains_runs(by_name[n]) for n in chosen["members"])
    if fitted_here and len(runs) >= 2:
        chosen["deep"] = write_one(comparison, {n: oof[n] for n in runs}, "shortlist_deep.yaml")
    return chosen


def write_one(comparison: Any, oof: dict[str, np.ndarray], file: str) -> dict[str, Any]:
    pool = comparison.pool
    chosen = analysis.shortlist(oof, pool.target, len(pool.class_names))
    document = {
        "comparison": str(comparison.out),
        "rule": chosen["rule"] + " Candidates: " + ELIGIBLE_RULE,
        "members": member_entries(comparison, chosen["members"]),
        "ensemble_f1": chosen["ensemble_f1"],
        "best_single": chosen["best_single"],
        "best_single_f1": chosen["best_single_f1"],
        "trace": chosen["trace"],
    }
    (comparison.out / file).write_text(yaml.safe_dump(document, sort_keys=False))
    return {**chosen, "file": file}


def value_shortlist(
    values: dict[str, np.ndarray], target: np.ndarray, k_min: int = 3, k_max: int = 5
) -> dict[str, Any]:
    """Greedy forward selection (without replacement) of the mean-prediction ensemble with the
    lowest out-of-fold RMSE, as :func:`mlcycle.selection.compare.analysis.shortlist` does for
    F1."""

    def rmse(members: list[str]) -> float:
        return regression_scores(np.mean([values[m] for m in members], axis=0), target)["rmse"]

    single = {name: rmse([name]) for name in values}
    best = min(single, key=single.__getitem__)

    def pick(chosen: list[str], remaining: list[str]) -> tuple[str, float]:
        name = min(remaining, key=lambda n: (rmse([*chosen, n]), remaining.index(n)))
        return name, rmse([*chosen, name])

    steps = analysis.forward_selection(
        best,
        single[best],
        [n for n in values if n != best],
        pick,
        lambda new, old: new < old,
        k_min,
        k_max,
    )
    chosen, score = [name for name, _ in steps], steps[-1][1]
    trace = [{"added": n, "ensemble_rmse": e, "single_rmse": single[n]} for n, e in steps]
    rule = (
        "Greedy forward selection without replacement on the out-of-fold RMSE of the "
        f"mean-prediction ensemble: start from the best single model, add the model that lowers "
        f"it most, keep at least {k_min} models, stop at {k_max} or when no addition lowers it."
    )
    return {
        "members": chosen,
        "trace": trace,
        "rule": rule,
        "best_single": best,
        "best_single_rmse": single[best],
        "ensemble_rmse": score,
    }


def write_value_shortlist(
    comparison: Any, values: dict[str, np.ndarray], names: list[str]
) -> dict[str, Any] | None:
    """``shortlist.yaml`` of the candidates ``names`` predicting values."""
    if not names:
        return None
    chosen = value_shortlist({n: values[n] for n in names}, comparison.pool.target)
    document = {
        "comparison": str(comparison.out),
        "rule": chosen["rule"],
        "members": member_entries(comparison, chosen["members"]),
        **{k: chosen[k] for k in ("ensemble_rmse", "best_single", "best_single_rmse", "trace")},
    }
    (comparison.out / "shortlist.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return {**chosen, "file": "shortlist.yaml"}
