"""What compare.py adds to its report for a table: out-of-fold confusion matrices
(classification), residual summaries (regression), the permutation importance of the best
model's columns on its out-of-fold rows, and the words about the table."""

from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlcycle.reports.figures import confusion_matrix_figure, plt, save
from mlcycle.selection.compare.analysis import macro_f1
from mlcycle.selection.scores import regression_scores

CONFUSION_MODELS = 3  # confusion matrices of the top models
RESIDUAL_MODELS = 3
IMPORTANCE_REPEATS = 3
IMPORTANCE_ROWS = 1000  # per fold: more rows are sampled
IMAGE_ONLY = (
    "Image-only parts (highest-loss image galleries, attribution maps, pixel permutation "
    "importance) do not apply to a table and are skipped."
)


def confusions(
    oof: dict[str, np.ndarray], pool: Any, rows: list[dict[str, Any]], figures: Path
) -> dict[str, Any]:
    """Out-of-fold confusion matrices (rows: true class) of the top models, as figures and
    numbers."""
    names = pool.class_names
    k = len(names)
    ranked = [r["candidate"] for r in rows if r["candidate"] in oof][:CONFUSION_MODELS]
    found: dict[str, Any] = {}
    for name in ranked:
        pred = oof[name].argmax(axis=1)
        matrix = np.bincount(pool.target * k + pred, minlength=k * k).reshape(k, k)
        found[name] = matrix.tolist()
        title = f"{name}: out-of-fold confusion ({len(pred)} rows)"
        save(confusion_matrix_figure(matrix, names, title), figures / f"confusion_{name}.png")
    return found


def residual_summary(values: dict[str, np.ndarray], pool: Any, top: int = 5) -> dict[str, Any]:
    """Per model: the out-of-fold scores, the residuals' mean (bias), std and quantiles of
    their size, and the keys of the rows with the largest residuals."""
    target = pool.target.astype(np.float64)
    summary = {}
    for name, pred in values.items():
        residual = target - pred
        size = np.abs(residual)
        worst = np.argsort(-size, kind="stable")[:top]
        summary[name] = {
            **regression_scores(pred, target),
            "bias": round(float(residual.mean()), 6),
            "residual_std": round(float(residual.std()), 6),
            "abs_median": round(float(np.median(size)), 6),
            "abs_p90": round(float(np.quantile(size, 0.9)), 6),
            "abs_max": round(float(size.max()), 6),
            "worst_rows": [
                {"row": pool.paths[i], "actual": float(target[i]), "predicted": float(pred[i])}
                for i in worst
            ],
        }
    return summary


def residual_figures(
    values: dict[str, np.ndarray], pool: Any, rows: list[dict[str, Any]], figures: Path
) -> list[str]:
    from mlcycle.reports.residuals import residual_figure

    ranked = [r["candidate"] for r in rows if r["candidate"] in values][:RESIDUAL_MODELS]
    for name in ranked:
        scores = regression_scores(values[name], pool.target)
        title = f"{name} out of fold: rmse {scores['rmse']:.4g}, r2 {scores['r2']:.4f}"
        save(residual_figure(values[name], pool.target, title), figures / f"residuals_{name}.png")
    return ranked


class OutOfTime(Exception):
    """The time limit was reached: an optional part of the report is skipped."""


def permutation_importance(
    comparison: Any, name: str, repeats: int = IMPORTANCE_REPEATS
) -> list[dict[str, Any]]:
    """How much the out-of-fold score of candidate ``name`` drops when one input column's
    values are shuffled among the rows: each fold's own model and pipeline on the rows it did
    not train on, ``repeats`` shuffles, the drop averaged over folds and shuffles. The score is
    the leaderboard's (macro F1, or RMSE for regression, where the drop is the RMSE's rise).
    Raises :class:`OutOfTime` once the comparison's deadline has passed."""
    from mlcycle.run.loader import Run

    pool = comparison.pool
    candidate = next(c for c in comparison.spec.candidates if c.name == name)
    columns = [c.name for c in pool.data.schema.features]
    rng = np.random.default_rng(comparison.spec.fold_seed)
    drops: dict[str, list[float]] = {c: [] for c in columns}
    for fold in range(comparison.spec.folds):
        if comparison.deadline is not None and time.monotonic() > comparison.deadline:
            raise OutOfTime("the time limit was reached")
        run = Run(comparison.fold_dir(candidate, fold))
        for column, drop in fold_drops(comparison, run, fold, columns, repeats, rng):
            drops[column].append(drop)
    table = [
        {"column": c, "drop": round(float(np.mean(v)), 6), "std": round(float(np.std(v)), 6)}
        for c, v in drops.items()
    ]
    return sorted(table, key=lambda r: -r["drop"])


def fold_drops(
    comparison: Any, run: Any, fold: int, columns: list[str], repeats: int, rng: Any
) -> list[tuple[str, float]]:
    """Each (column, score drop) of one fold's run on its out-of-fold rows: every shuffled copy
    of the rows is predicted in one call (the pipeline's cost is per call)."""
    from mlcycle.tables.selection.fold import frame_predictor

    pool = comparison.pool
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the refitted pipeline is the fold run's own
        data = run.load_data()
        data.setup()
    _, fold_rows = pool.fold_rows(fold)
    if len(fold_rows) > IMPORTANCE_ROWS:
        fold_rows = rng.choice(fold_rows, IMPORTANCE_ROWS, replace=False)
    rows = pool.data.table.frame.iloc[[pool.positions[r] for r in fold_rows]]
    rows = rows.reset_index(drop=True)
    target = pool.target[fold_rows]
    copies, names = [rows], []
    for column in columns:
        for _ in range(repeats):
            shuffled = rows.copy()
            shuffled[column] = rng.permutation(shuffled[column].to_numpy())
            copies.append(shuffled)
            names.append(column)
    out = frame_predictor(run.load_model("best"), data)(pd.concat(copies, ignore_index=True))
    scores = [fold_score(pool, part, target) for part in np.split(np.asarray(out), len(copies))]
    return [(column, scores[0] - score) for column, score in zip(names, scores[1:], strict=True)]


def fold_score(pool: Any, out: np.ndarray, target: np.ndarray) -> float:
    """Macro F1, or minus the RMSE (higher is better for both)."""
    if pool.classify:
        return macro_f1(out, target, len(pool.class_names))
    return -regression_scores(out, target)["rmse"]


def importance_figure(name: str, table: list[dict[str, Any]], metric: str) -> Figure:
    shown = table[:20]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.2))
    ax.barh(
        [r["column"] for r in shown], [r["drop"] for r in shown], xerr=[r["std"] for r in shown]
    )
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop of out-of-fold {metric} when the column is shuffled (mean over folds)")
    ax.set_title(f"Permutation importance: {name}")
    fig.tight_layout()
    return fig


def analyse(
    comparison: Any,
    rows: list[dict[str, Any]],
    oof: dict[str, np.ndarray],
    values: dict[str, np.ndarray],
    good: list[str],
    figures: Path,
) -> dict[str, Any]:
    """The table parts of the report: confusion matrices or residuals, and importance."""
    pool = comparison.pool
    found: dict[str, Any] = {}
    if pool.classify and good:
        found["confusion"] = confusions({n: oof[n] for n in good}, pool, rows, figures)
    if not pool.classify and values:
        found["residuals"] = residual_summary(values, pool)
        found["residual_figures"] = residual_figures(values, pool, rows, figures)
    best = next((r["candidate"] for r in rows if r["candidate"] in (oof or values)), None)
    if best is not None:
        try:
            table = permutation_importance(comparison, best)
            metric = "macro F1" if pool.classify else "-RMSE"
            save(importance_figure(best, table, metric), figures / f"importance_{best}.png")
            found["importance"] = {best: f"figures/importance_{best}.png"}
            found["permutation_importance"] = {"candidate": best, "columns": table}
        except OutOfTime as exc:
            print(f"permutation importance skipped: {exc}", file=sys.stderr)
            found["importance_skipped"] = str(exc)
        except Exception as exc:  # a help, not the result
            print(
                f"warning: permutation importance not computed: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    return found


def notes(comparison: Any, clock_s: float, fold_s: float) -> list[str]:
    spec, pool, data = comparison.spec, comparison.pool, comparison.data
    kind = f"{len(pool.class_names)} classes" if pool.classify else "regression"
    return [
        f"{len(pool)} train+val rows ({kind}, target '{data.schema.target}'), {spec.folds} "
        f"{'stratified ' if pool.classify else ''}folds of the rows' content hashes (seed "
        f"{spec.fold_seed}); the test split ({len(data.split_positions('test'))} rows) was "
        "sealed: no candidate predicted or scored it.",
        f"Data: {data.table.how}; {data.num_features} features after the pipeline; fingerprint "
        f"{data.fingerprint[:16]}.",
        "Metric: mean and standard deviation over folds of each fold's out-of-fold score; "
        "latency: milliseconds per row from the raw rows through the fold's fitted pipeline and "
        "the model to probabilities or values, on one CPU thread, batches of 64 rows (the same "
        "for every family); size: saved weights (MLP) or pickled estimator (classic); fit s: "
        "the train.py fit of a fold, data pipeline included.",
        f"Wall time of this command {clock_s:.0f} s; the candidate-folds took {fold_s:.0f} s "
        "when they ran (a re-run resumes finished ones).",
        IMAGE_ONLY,
    ]


def html_tables(found: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    tables = []
    residuals = found.get("residuals") or {}
    if residuals:
        keys = ["rmse", "mae", "r2", "bias", "residual_std", "abs_median", "abs_p90", "abs_max"]
        values = [[name, *(f"{s[k]:.4g}" for k in keys)] for name, s in residuals.items()]
        tables.append(("Out-of-fold residuals (actual - predicted)", ["model", *keys], values))
    importance = found.get("permutation_importance")
    if importance:
        values = [
            [r["column"], f"{r['drop']:.4f}", f"{r['std']:.4f}"] for r in importance["columns"]
        ]
        tables.append(
            (
                f"Permutation importance of {importance['candidate']} (out of fold)",
                ["column", "drop", "std"],
                values,
            )
        )
    return tables
