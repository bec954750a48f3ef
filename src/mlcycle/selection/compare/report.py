"""What compare.py writes after the fits: the leaderboard (CSV, Markdown, JSON and a
self-contained HTML page), each candidate's out-of-fold predictions, and the analysis and
shortlist its kind of comparison makes of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.record import Stopwatch, write_json
from mlcycle.reports.figures import save
from mlcycle.selection.compare import leaderboard
from mlcycle.selection.compare.baselines import baseline_notes, baseline_rows, with_baselines
from mlcycle.selection.compare.slices import out_of_fold_slices
from mlcycle.selection.compare.summary import summarize

SUMMARY_KEYS = (
    "confused_pairs",
    "error_correlation",
    "confusion",
    "residuals",
    "permutation_importance",
    "importance_skipped",
    "slices",
)


def write_report(
    comparison: Any,
    candidates: list[Any],
    results: dict[str, list[dict]],
    command: str,
    clock: Stopwatch,
    skipped: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every file of the report; returns leaderboard.json's content. ``skipped``: the
    candidates left out of the ranking (a fold not run: the time limit, Ctrl-C) and why."""
    out = comparison.out
    key, mode = comparison.score_key()
    rows = leaderboard.ranked([summarize(c, results[c.name], comparison) for c in candidates], mode)
    oof = save_out_of_fold(comparison, candidates, results)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    minimum = getattr(comparison.objective, "min", None) if comparison.objective else None
    save(leaderboard.metric_figure(rows, f"val/{key}", minimum), figures / "leaderboard.png")
    found, shortlisted = comparison.analyse(rows, oof, mode, figures)
    found.update(out_of_fold_slices(comparison, rows, oof))  # the best candidate per slice
    dummies = baseline_rows(comparison, results)  # kind: baseline, never short-listed
    board = with_baselines(rows, dummies, mode)
    leaderboard.write_csv(board, out / "leaderboard.csv")
    notes = notes_for(comparison, command, clock, shortlisted)
    notes += [skipped_note(s) for s in skipped or []] + baseline_notes(rows, dummies)
    write_pages(comparison, board, found, notes)
    summary = {
        "command": command,
        "wall_time_s": clock.seconds,
        "metric": f"val/{key}",
        "mode": mode,
        "rows": [{k: v for k, v in r.items() if k != "line"} for r in rows],
        "baselines": dummies,
        "shortlist": shortlisted,
        "time_limit_s": comparison.spec.time_limit,
        "skipped": skipped or [],
        **{k: v for k, v in found.items() if k in SUMMARY_KEYS},
    }
    write_json(out / "leaderboard.json", summary)
    print(leaderboard.console_table(board))
    for line in baseline_notes(rows, dummies):
        print(line)
    for line in shortlist_lines(shortlisted, out):
        print(line)
    print(f"wrote {out / 'leaderboard.html'} ({clock.seconds:.0f}s)")
    return summary


def save_out_of_fold(
    comparison: Any, candidates: list[Any], results: dict[str, list[dict]]
) -> dict[str, np.ndarray]:
    """Each candidate's out-of-fold predictions (when every fold finished), kept in its
    ``oof.npz`` with the pool's targets, folds and keys."""
    pool, key = comparison.pool, comparison.predictions
    kept: dict[str, np.ndarray] = {}
    for candidate in candidates if key else []:
        found = comparison.out_of_fold(results[candidate.name])
        if found is None:
            continue
        kept[candidate.name] = found
        np.savez_compressed(
            comparison.out / "candidates" / candidate.name / "oof.npz",
            **{key: found},
            target=pool.target,
            folds=pool.folds,
            paths=np.array(pool.paths),
        )
    return kept


def write_pages(
    comparison: Any, rows: list[dict[str, Any]], found: dict[str, Any], notes: list[str]
) -> None:
    """leaderboard.md and leaderboard.html."""
    out, title = comparison.out, f"Leaderboard: {comparison.spec.path.name}"
    (out / "leaderboard.md").write_text(
        f"# {title}\n\n" + "\n\n".join(notes) + "\n\n" + leaderboard.markdown_table(rows) + "\n"
    )
    leaderboard.write_html(
        out / "leaderboard.html",
        title,
        rows,
        notes,
        figure_list(out / "figures", found),
        comparison.html_tables(found),
    )


def shortlist_lines(shortlisted: dict[str, Any] | None, out: Path) -> list[str]:
    """The console's lines about the shortlist(s)."""
    if not shortlisted:
        return []
    members = ", ".join(shortlisted["members"])
    if "ensemble_rmse" in shortlisted:  # a shortlist of predicted values
        return [
            f"shortlist: {members} (out-of-fold mean prediction rmse "
            f"{shortlisted['ensemble_rmse']:.4f} vs best single "
            f"{shortlisted['best_single_rmse']:.4f}); {out / 'shortlist.yaml'}"
        ]
    lines = [
        f"shortlist: {members} (out-of-fold soft vote {shortlisted['ensemble_f1']:.4f} vs best "
        f"single {shortlisted['best_single_f1']:.4f}); {out / 'shortlist.yaml'}"
    ]
    deep = shortlisted.get("deep")
    if deep:
        lines.append(
            f"deep-only shortlist for one ONNX ensemble: {', '.join(deep['members'])} "
            f"({deep['ensemble_f1']:.4f}); {out / 'shortlist_deep.yaml'}"
        )
    return lines


def notes_for(comparison: Any, command: str, clock: Stopwatch, shortlisted: Any) -> list[str]:
    notes = [f"Command: {command}", *comparison.notes(clock.seconds, fold_seconds(comparison))]
    if comparison.objective is not None:
        notes.append(f"Objective: {objective_words(comparison.objective)}.")
    if shortlisted and "ensemble_rmse" in shortlisted:
        notes.append(
            f"Shortlist ({shortlisted['rule']}): {', '.join(shortlisted['members'])}; out-of-fold "
            f"mean prediction rmse {shortlisted['ensemble_rmse']:.4f} vs best single "
            f"{shortlisted['best_single']} {shortlisted['best_single_rmse']:.4f}."
        )
    elif shortlisted:
        notes.append(
            f"Shortlist ({shortlisted['rule']}): {', '.join(shortlisted['members'])}; out-of-fold "
            f"soft vote {shortlisted['ensemble_f1']:.4f} vs best single "
            f"{shortlisted['best_single']} {shortlisted['best_single_f1']:.4f}."
        )
    return notes


def skipped_note(item: dict[str, Any]) -> str:
    folds = ", ".join(str(f) for f in item["folds_skipped"])
    return f"Skipped {item['candidate']} (fold {folds} not run: {item['reason']}); not ranked."


def fold_seconds(comparison: Any) -> float:
    """The wall time every candidate-fold took when it ran, from its selection_fold.json."""
    total = 0.0
    for path in (comparison.out / "candidates").glob("*/fold*/selection_fold.json"):
        total += float(json.loads(path.read_text()).get("wall_s") or 0.0)
    return total


def objective_words(objective: Any) -> str:
    parts = [f"{objective.metric} {'>=' if objective.direction == 'max' else '<='} {objective.min}"]
    if objective.min is None:
        parts = [f"rank by {objective.metric}"]
    if objective.per_class_min is not None:
        parts.append(f"every class >= {objective.per_class_min}")
    if objective.max_latency_ms is not None:
        parts.append(f"latency <= {objective.max_latency_ms} ms")
    if objective.max_size_mb is not None:
        parts.append(f"size <= {objective.max_size_mb} MB")
    return "; ".join(parts)


def figure_list(figures: Path, found: dict[str, Any]) -> list[tuple[str, Path]]:
    items = [
        ("Metric by candidate", figures / "leaderboard.png"),
        ("Per-class F1 by model (out of fold)", figures / "per_class_f1.png"),
        ("Error correlation: disagreement and double fault", figures / "error_correlation.png"),
    ]
    for name in found.get("confusion", {}):
        items.append((f"Out-of-fold confusion: {name}", figures / f"confusion_{name}.png"))
    for name in found.get("residual_figures", []):
        items.append((f"Out-of-fold residuals: {name}", figures / f"residuals_{name}.png"))
    for name in found.get("galleries", []):
        items.append((f"Highest-loss images: {name}", figures / f"highest_loss_{name}.png"))
    if found.get("slices_figure"):
        items.append(("Out-of-fold metric by slice: best candidate", found["slices_figure"]))
    for name, rel in found.get("importance", {}).items():
        items.append((f"Variable importance: {name}", figures.parent / rel))
    return items
