"""Evaluation by slice for evaluate.py: the columns checked before anything is predicted, then
the split's per-item predictions (kept while the task's evaluator ran) scored per slice into
``<run>/slices_<split>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Objective, for_monitor, run_monitor
from mlcycle.evaluators.outputs import gathered
from mlcycle.evaluators.slice_columns import check_names, slice_columns_of
from mlcycle.evaluators.slice_report import write_slices
from mlcycle.evaluators.slices import Judge, SliceOptions, flag_lines, score_slices, summary_line


def slice_names(data: Any, options: SliceOptions) -> list[str]:
    """The columns to slice by (named ones checked: an unknown one is one line with the closest
    names); empty when the kind of data has none."""
    part = slice_columns_of(data)
    if part is None:
        if options.columns:
            kind = getattr(data, "data_kind", None) or type(data).__name__
            raise UserError(f"--slices: the {kind} data has no columns to slice by")
        return []
    if options.columns is None:
        return part.defaults(data)
    check_names(options.columns, part.names(data), "the data (--slices)")
    return list(options.columns)


def judge_for(objective: Objective | None, monitor: tuple[str, str], margin: float) -> Judge:
    """The gate's metric: the objective's (its slice_min, else min), else the run's monitor."""
    if objective is None:
        metric, mode = monitor
        return Judge(metric.partition("/")[2] or metric, mode, None, margin)
    minimum = objective.slice_min if objective.slice_min is not None else objective.min
    return Judge(objective.name, objective.direction, minimum, margin)


def evaluate_slices(
    data: Any,
    batches: list[dict],
    names: list[str],
    judge: Judge,
    options: SliceOptions,
    folder: Path,
    title: str,
) -> dict[str, Any]:
    """Score the kept predictions per slice; ``{"slices": ..., "report_lines": [...]}``."""
    outputs = gathered(batches)
    if not names or outputs is None:
        return {}
    part = slice_columns_of(data)
    positions = outputs["index"].tolist()
    columns = part.values(data, positions, names)
    report = score_slices(columns, outputs["scores"], outputs["target"], judge, options)
    write_slices(report, folder, title)
    lines = [summary_line(report, str(folder)), *flag_lines(report, part.unit)]
    flagged = [s for s in report.get("slices", []) if s["status"] == "flagged"]
    small = [s for s in report.get("slices", []) if s["status"] == "too_small"]
    record = {
        "folder": str(folder),
        "metric": report["metric"],
        "columns": names,
        "flagged": [f"{s['column']}={s['value']}" for s in flagged],
        "too_small": len(small),
    }
    return {"slices": record, "report_lines": lines}


def run_slices(
    run: Any,
    model: Any,
    data: Any,
    batches: list[dict],
    names: list[str],
    objective: Objective | None,
    options: SliceOptions,
    split: str,
) -> dict[str, Any]:
    """evaluate.py's slices of ``split``, judged by the run's objective (or its monitor)."""
    monitor = run_monitor(run.path, type(model))
    judge = judge_for(for_monitor(objective, monitor[0]), monitor, options.margin)
    folder = Path(run.path) / f"slices_{split}"
    title = f"{split}: {judge.name} by slice ({Path(run.path).name})"
    return evaluate_slices(data, batches, names, judge, options, folder, title)
