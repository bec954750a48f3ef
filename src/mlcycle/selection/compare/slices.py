"""compare.py's evaluation by slice: the best candidate's out-of-fold predictions scored per
slice of the data (the YAML's ``slices``, ``slice_margin`` and ``slice_min_samples``, as
evaluate.py's options; default: the kind of data's columns), into ``<out>/slices/``. Every pool
sample is predicted by a fold model that did not train on it, so the slices cover train+val."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.evaluators.slice_columns import slice_columns_of
from mlcycle.evaluators.slice_report import write_slices
from mlcycle.evaluators.slice_run import judge_for, slice_names
from mlcycle.evaluators.slices import flag_lines, score_slices, summary_line


def best_with_predictions(rows: list[dict[str, Any]], oof: dict[str, np.ndarray]) -> str | None:
    """The best-ranked candidate whose out-of-fold predictions are whole."""
    return next((r["candidate"] for r in rows if r["candidate"] in oof), None)


def out_of_fold_slices(
    comparison: Any, rows: list[dict[str, Any]], oof: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Score the best candidate per slice; ``{"slices": record, "slices_figure": path}`` and the
    console lines printed, or ``{}`` when nothing can be sliced."""
    data, pool = comparison.data, comparison.pool
    part, best = slice_columns_of(data), best_with_predictions(rows, oof)
    if part is None or best is None:
        return {}
    options = comparison.spec.slices
    names = slice_names(data, options)
    if not names:
        return {}
    judge = judge_for(comparison.objective, comparison.monitor, options.margin)
    columns = part.values(data, list(pool.positions), names)
    report = score_slices(columns, oof[best], np.asarray(pool.target), judge, options)
    report["candidate"] = best
    folder = Path(comparison.out) / "slices"
    title = f"out of fold: {judge.name} by slice ({best})"
    write_slices(report, folder, title)
    for line in [summary_line(report, str(folder)), *flag_lines(report, part.unit)]:
        print(line.strip())
    found = report.get("slices", [])
    record = {
        "candidate": best,
        "folder": str(folder),
        "metric": report["metric"],
        "columns": names,
        "flagged": [f"{s['column']}={s['value']}" for s in found if s["status"] == "flagged"],
        "too_small": sum(s["status"] == "too_small" for s in found),
    }
    figure = folder / "slices.png"
    return {"slices": record, **({"slices_figure": figure} if figure.is_file() else {})}
