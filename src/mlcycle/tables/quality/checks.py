"""The checks of ``validate_data.py`` on a table: each turns the described columns and rows into a
list of findings (named by column, or by row position: 0 is the first data row)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.quality.findings import class_imbalance, small_classes
from mlcycle.tables.quality.columns import Column, missing_mask
from mlcycle.tables.schema import label_texts

TABLE_FINDINGS = (
    "target_missing",
    "missing_values",
    "mixed_types",
    "constant_columns",
    "near_constant_columns",
    "identifier_columns",
    "duplicate_rows",
    "label_conflicts",
    "split_leakage",
    "small_classes",
    "class_imbalance",
    "outliers",
    "target_leakage",
)
ROWS_LISTED = 20  # row positions listed per entry; the rest are counted


@dataclass(frozen=True)
class TableThresholds:
    min_per_class: int = 10  # a class with fewer rows is reported
    max_imbalance: float = 10.0  # largest / smallest class count above this is reported
    iqr_k: float = 1.5  # outliers: below Q1 - k IQR or above Q3 + k IQR
    near_constant: float = 0.98  # a column whose most common value has this share or more
    identifier_unique: float = 0.98  # a text or integer column with this share of distinct values
    leak_score: float = 0.99  # one feature alone reaching this balanced accuracy or R^2


def _rows(positions: list[int] | np.ndarray) -> list[int]:
    return [int(p) for p in list(positions)[:ROWS_LISTED]]


def identifier_like(col: Column, unique_share: float) -> str | None:
    """Why a column looks like a row identifier (the schema says so, or nearly every value of a
    text or integer column is distinct), or None."""
    if col.kind == "identifier":
        return col.dropped or "identifier-like (schema)"
    present = col.rows - col.missing
    if col.kind in ("constant", "datetime") or present < 20 or col.dropped == "the target":
        return None
    share = col.unique / present
    if col.values is None:  # text: nearly every value distinct
        return f"{share:.0%} distinct values" if share >= unique_share else None
    # numbers: every value a distinct whole number, densely packed like a row counter
    x = col.values[np.isfinite(col.values)]
    dense = np.ptp(x) + 1 <= 2 * len(x) and bool(np.all(np.mod(x, 1) == 0))
    return (
        "distinct whole numbers in a dense run, like a row counter"
        if share == 1 and dense
        else None
    )


def column_findings(columns: list[Column], t: TableThresholds) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {
        "missing_values": [],
        "mixed_types": [],
        "constant_columns": [],
        "near_constant_columns": [],
        "identifier_columns": [],
        "outliers": [],
    }
    for c in columns:
        if c.missing:
            found["missing_values"].append(
                {"column": c.name, "missing": c.missing, "share": round(c.missing_share, 4)}
            )
        if c.mixed:
            found["mixed_types"].append({"column": c.name, **c.mixed})
        if c.unique <= 1:
            found["constant_columns"].append(
                {
                    "column": c.name,
                    "value": c.top[0][0] if c.top else None,
                    "missing_share": round(c.missing_share, 4),
                }
            )
        elif c.top_share >= t.near_constant:
            found["near_constant_columns"].append(
                {"column": c.name, "value": c.top[0][0], "share": round(c.top_share, 4)}
            )
        reason = identifier_like(c, t.identifier_unique)
        if reason and c.unique > 1:
            found["identifier_columns"].append(
                {"column": c.name, "unique": c.unique, "reason": reason}
            )
        if c.outliers:
            low, high = c.fences or (None, None)
            found["outliers"].append(
                {
                    "column": c.name,
                    "count": len(c.outliers),
                    "share": round(len(c.outliers) / c.rows, 4),
                    "low_fence": round(low, 6),
                    "high_fence": round(high, 6),
                    "rows": _rows(c.outliers),
                }
            )
    return found


def duplicate_rows(frame: pd.DataFrame) -> list[dict]:
    """Groups of identical rows (every column of ``frame``)."""
    keys = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    groups: dict[int, list[int]] = {}
    for pos, key in enumerate(keys):
        groups.setdefault(int(key), []).append(pos)
    return [{"rows": _rows(g), "count": len(g)} for g in groups.values() if len(g) > 1]


def feature_groups(frame: pd.DataFrame, features: list[str]) -> list[list[int]]:
    """Row positions that agree on every feature, in groups of two or more."""
    if not features:
        return []
    keys = pd.util.hash_pandas_object(frame[features].astype(str), index=False).to_numpy()
    groups: dict[int, list[int]] = {}
    for pos, key in enumerate(keys):
        groups.setdefault(int(key), []).append(pos)
    return [g for g in groups.values() if len(g) > 1]


def label_conflicts(groups: list[list[int]], target: pd.Series) -> list[dict]:
    """Rows with the same features and different targets (classification)."""
    found = []
    y = label_texts(target).astype(str).to_numpy()
    for g in groups:
        labels = Counter(y[g])
        if len(labels) > 1:
            found.append({"rows": _rows(g), "count": len(g), "targets": dict(labels)})
    return found


def split_leakage(groups: list[list[int]], splits: list[str | None] | None) -> list[dict]:
    """Rows with the same features in two different splits (training would see a test row)."""
    if splits is None:
        return []
    found = []
    for g in groups:
        where = sorted({splits[i] for i in g if splits[i] is not None})
        if len(where) > 1:
            found.append({"rows": _rows(g), "splits": where})
    return found


def target_findings(
    target: pd.Series, task: str, t: TableThresholds
) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Rows without a target, and for classification the class counts and their findings."""
    gone = missing_mask(target).to_numpy()
    found: dict[str, list[dict]] = {"target_missing": []}
    if gone.any():
        found["target_missing"] = [{"count": int(gone.sum()), "rows": _rows(np.flatnonzero(gone))}]
    counts: dict[str, int] = {}
    if task == "classification":
        counts = dict(sorted(Counter(label_texts(target[~gone]).astype(str)).items()))
    found["small_classes"] = small_classes(counts, t.min_per_class)
    found["class_imbalance"] = class_imbalance(counts, t.max_imbalance)
    return found, counts


def leak_findings(scores: dict[str, float], task: str, limit: float) -> list[dict]:
    """Features that alone predict the target almost perfectly."""
    metric = "balanced accuracy" if task == "classification" else "R^2"
    return [
        {
            "column": name,
            "score": score,
            "metric": metric,
            "reason": f"alone it predicts the target with cross-validated {metric} {score:.3f}",
        }
        for name, score in sorted(scores.items(), key=lambda kv: -kv[1])
        if score >= limit
    ]


def check_table(
    frame: pd.DataFrame,
    schema: Any,
    columns: list[Column],
    leak_scores: dict[str, float],
    t: TableThresholds,
    splits: list[str | None] | None = None,
) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Every finding by name (see :data:`TABLE_FINDINGS`), and the class counts."""
    found = column_findings(columns, t)
    target_found, counts = target_findings(frame[schema.target], schema.task, t)
    found.update(target_found)
    # identifiers and dropped columns differ between copies of a record: compare what is learnt
    features = [str(getattr(c, "name", c)) for c in schema.features]
    found["duplicate_rows"] = duplicate_rows(frame[[*features, schema.target]])
    groups = feature_groups(frame, features)
    found["label_conflicts"] = (
        label_conflicts(groups, frame[schema.target]) if schema.task == "classification" else []
    )
    found["split_leakage"] = split_leakage(groups, splits)
    found["target_leakage"] = leak_findings(leak_scores, schema.task, t.leak_score)
    return {name: found[name] for name in TABLE_FINDINGS}, counts
