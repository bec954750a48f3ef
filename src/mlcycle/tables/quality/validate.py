"""``validate_data.py`` on a table: describe every column, run the checks, write
``data_report.json`` and ``columns.csv`` (one row per column) and print the counts."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.tables.quality.checks import TableThresholds, check_table
from mlcycle.tables.quality.columns import Column, describe_columns
from mlcycle.tables.quality.relations import leakage_scores
from mlcycle.tables.quality.source import (
    Table,
    add_arguments,
    from_module,
    load,
    spec_from_arguments,
)

REPORT = "data_report.json"
COLUMNS = "columns.csv"


def feature_names(schema: Any) -> list[str]:
    """The columns the model would see (the schema's kept features)."""
    return [str(getattr(c, "name", c)) for c in schema.features]


def datetime_numbers(series: pd.Series) -> np.ndarray:
    """Dates as float seconds (NaN when missing or unreadable), read as training reads them."""
    from mlcycle.tables.schema import read_as

    stamps = read_as(series, "datetime")[0]
    seconds = (stamps - pd.Timestamp("1970-01-01")).dt.total_seconds()
    return seconds.to_numpy(dtype=float)


def leak_inputs(
    table: Table, columns: list[Column]
) -> dict[str, tuple[pd.Series, np.ndarray | None]]:
    """Each feature as the single-feature models take it: numbers, or categories."""
    by_name = {c.name: c for c in columns}
    out = {}
    for name in feature_names(table.schema):
        col = by_name.get(name)
        if col is None or col.unique <= 1:
            continue
        series = table.frame[name]
        values = col.values if col.kind == "numeric" else None
        if col.kind == "datetime":
            values = datetime_numbers(series)
        out[name] = (series, values)
    return out


def validate_table(table: Table, t: TableThresholds, out: Path, seed: int = 0) -> dict[str, Any]:
    """Check every column and row of ``table``; write the report files and return the report."""
    start = time.perf_counter()
    frame, schema = table.frame, table.schema
    columns = describe_columns(frame, schema, t.iqr_k)
    scores = leakage_scores(leak_inputs(table, columns), frame[schema.target], schema.task, seed)
    found, class_counts = check_table(frame, schema, columns, scores, t, table.splits)
    seconds = time.perf_counter() - start
    report = {
        "configs": table.configs,
        "overrides": table.overrides,
        "kind": "table",
        "table": table.spec.to_dict() | {"url": table.spec.where if table.spec.url else None},
        "task": schema.task,
        "target": schema.target,
        "rows": int(len(frame)),
        "columns": int(frame.shape[1]),
        "features": feature_names(schema),
        "split_counts": dict(Counter(s or "not used" for s in table.splits))
        if table.splits
        else None,
        "class_counts": class_counts,
        "class_count_unit": "rows",
        "thresholds": asdict(t),
        "counts": {name: len(entries) for name, entries in found.items()},
        "scan": {
            "seconds": round(seconds, 3),
            "rows_per_second": round(len(frame) / max(seconds, 1e-9), 1),
        },
        "schema": schema.to_dict() if hasattr(schema, "to_dict") else None,
        "single_feature_scores": scores,
        "per_column": [c.summary() for c in columns],
        "findings": found,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
    rows = report["per_column"]
    with (out / COLUMNS).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return report


def summary(report: dict[str, Any], out: Path) -> str:
    """A short table: each finding and how many times it was found."""
    counts = report["counts"]
    width = max(len(n) for n in counts)
    scan = report["scan"]
    lines = [
        f"{report['rows']} rows, {report['columns']} columns ({report['task']}, target "
        f"'{report['target']}') in {scan['seconds']:.1f}s",
        f"{'finding':<{width}}  count",
    ]
    lines += [f"{name:<{width}}  {n:>5}" for name, n in counts.items()]
    for leak in report["findings"]["target_leakage"]:
        lines.append(f"warning: column '{leak['column']}' {leak['reason']}: a leak?")
    lines.append(f"report: {out / REPORT}")
    lines.append(f"per column: {out / COLUMNS}")
    return "\n".join(lines)


def add_options(parser: Any) -> None:
    """The table options of validate_data.py (the class options are shared with images)."""
    t = TableThresholds()
    add_arguments(parser)
    parser.add_argument("--iqr-k", type=float, default=t.iqr_k, help="tables: outliers lie beyond Q1 - k IQR or Q3 + k IQR")  # fmt: skip
    parser.add_argument("--near-constant", type=float, default=t.near_constant, help="tables: share of the most common value of a near-constant column")  # fmt: skip
    parser.add_argument("--leak-score", type=float, default=t.leak_score, help="tables: a feature alone reaching this cross-validated balanced accuracy or R^2 is a leak")  # fmt: skip


def run(args: Any, dm: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """validate_data.py on the table of ``--table`` (``dm`` None) or of a ``TabularData``."""
    if dm is None:
        table = load(spec_from_arguments(args))
    else:
        table = from_module(dm, [str(c) for c in args.get("config") or []], overrides or [])
    if not 0 < args.leak_score <= 1 or not 0 < args.near_constant <= 1:
        raise UserError("--leak-score and --near-constant must be in (0, 1]")
    t = TableThresholds(
        min_per_class=args.min_per_class,
        max_imbalance=args.max_imbalance,
        iqr_k=args.iqr_k,
        near_constant=args.near_constant,
        leak_score=args.leak_score,
    )
    out = Path(args.out)
    report = validate_table(table, t, out)
    print(summary(report, out))
    return report
