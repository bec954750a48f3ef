"""What each column of a table is: its kind, and why a column is not a feature.

:func:`infer_schema` reads the kinds from the values: ``numeric``, ``boolean`` (two values such
as yes/no, true/false, 0/1), ``datetime`` (dates written as text count), ``categorical``,
``text`` (a category column with more than 50 distinct values: the most frequent are kept),
``identifier`` (nearly every value distinct, or an ``id``-like name with unique integers) and
``constant``. Identifiers, constants, the target and the columns in ``data.drop`` are kept in
the schema with the reason they are not features. The schema goes to the run directory
(``schema.json``); :func:`check_frame` and :func:`row_problems` hold later tables to it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.tables.values import (
    FALSE,
    TRUE,
    blank_to_na,
    label_texts,
    parse_dates,
    read_as,
    sort_labels,
)

KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant")
TASKS = ("auto", "classification", "regression")
TEXT_LEVELS = 50  # a category column with more distinct values is "text"
MOSTLY = 0.95  # share of values that must read as numbers (dates) for the column to be numeric
UNIQUE = 0.99  # share of distinct values that makes a column identifier-like
CLASSES_MAX = 20  # an integer target with at most this many values is a classification target
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key)$|^id[_\s.-]|[a-z]Id$", re.IGNORECASE)


@dataclass
class Column:
    """One column of the table. ``dropped``: why it is not a feature (``None``: a feature);
    ``reason``: why it has its kind."""

    name: str
    kind: str
    dtype: str
    dropped: str | None = None
    reason: str = ""


@dataclass
class Schema:
    """The table's columns, its target and task (``classification``/``regression``) and the
    class labels as strings (sorted; empty for regression)."""

    columns: list[Column]
    target: str
    task: str
    classes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.dropped is None]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    def names_of(self, *kinds: str) -> list[str]:
        """The feature columns of these kinds, in table order."""
        return [c.name for c in self.features if c.kind in kinds]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "task": self.task,
            "classes": list(self.classes),
            "columns": [asdict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls(
            columns=[Column(**c) for c in data["columns"]],
            target=data["target"],
            task=data["task"],
            classes=[str(c) for c in data.get("classes", [])],
        )


# --- inference -----------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def infer_kind(series: pd.Series, name: str = "") -> tuple[str, str]:
    """The kind of one column and why."""
    series = blank_to_na(series)
    values = series.dropna()
    if len(values) == 0:
        return "constant", "every value is missing"
    unique = int(values.nunique())
    if unique == 1:
        return "constant", f"one value ('{_shown(values.iloc[0])}') in every row"
    if pd.api.types.is_bool_dtype(values):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime", "date/time values"
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
        if unique == 2 and set(numbers.unique()) <= {0.0, 1.0}:
            return "boolean", "values 0 and 1 only"
        return _numeric_or_id(numbers, name, "numbers")
    text = label_texts(values)
    lowered = set(text.str.lower().unique())
    if unique == 2 and len(lowered) == 2 and lowered <= TRUE | FALSE and lowered & TRUE:
        pair = " and ".join(sorted(lowered))
        return "boolean", f"two values ({pair})"
    numbers = pd.to_numeric(text, errors="coerce")
    share = float(numbers.notna().mean())
    if share >= MOSTLY:
        kind, reason = _numeric_or_id(numbers.dropna(), name, "text")
        return kind, f"{reason} ({share:.0%} of values read as numbers)"
    looks_dated = text.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True)
    if float(looks_dated.mean()) >= MOSTLY:
        dated = parse_dates(text)
        share = float(dated.notna().mean())
        if share >= MOSTLY:
            return "datetime", f"{share:.0%} of values read as dates"
    ratio = unique / len(values)
    if len(values) >= 20 and (ratio >= UNIQUE or (ratio >= 0.9 and _ID_NAME.search(name))):
        return "identifier", f"identifier-like: {ratio:.0%} unique values"
    if unique > TEXT_LEVELS:
        return "text", f"{unique} distinct values: text read as a category (the most frequent kept)"
    return "categorical", f"{unique} distinct values"


def _numeric_or_id(numbers: pd.Series, name: str, what: str) -> tuple[str, str]:
    integer = bool((numbers == np.floor(numbers)).all())
    unique = numbers.nunique()
    if integer and len(numbers) >= 20 and unique == len(numbers):
        consecutive = numbers.max() - numbers.min() + 1 == len(numbers)
        if consecutive or _ID_NAME.search(name):
            why = "consecutive integers" if consecutive else "an id-like name"
            return "identifier", f"identifier-like: 100% unique values ({why})"
    return "numeric", what if what == "numbers" else "numbers written as text"


def _closest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _listed(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_target(frame: pd.DataFrame, target: str | None) -> str:
    if not target:
        raise UserError(
            f"data.target is not set; name the label column (columns: {_listed(list(frame.columns))})"
        )
    if target not in frame.columns:
        names = [str(c) for c in frame.columns]
        raise UserError(
            f"data.target '{target}' is not a column of the table; {_closest(target, names)}"
            f"columns: {_listed(names)}"
        )
    return target


def infer_task(target: pd.Series, name: str, task: str = "auto") -> str:
    """``classification`` for text, boolean or integer targets with at most 20 values,
    ``regression`` for other numbers; ``task`` overrides."""
    if task not in TASKS:
        raise UserError(f"data.task '{task}' is not one of {', '.join(TASKS)}")
    values = blank_to_na(target).dropna()
    if len(values) == 0:
        raise UserError(f"data.target '{name}' has no values; every row's target is missing")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        parsed = pd.to_numeric(values.astype(object), errors="coerce")
        numeric = bool(parsed.notna().all())
        values = parsed if numeric else values
    if task == "regression":
        if not numeric:
            raise UserError(
                f"data.target '{name}' holds text ('{_shown(values.iloc[0])}'); data.task="
                "regression needs numbers: use data.task=classification"
            )
        return task
    if task == "classification":
        return task
    if not numeric:
        return "classification"
    numbers = values.astype(float)
    integer = bool((numbers == np.floor(numbers)).all())
    return "classification" if integer and numbers.nunique() <= CLASSES_MAX else "regression"


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: str = "auto",
    drop: tuple[str, ...] | list[str] = (),
    kinds: dict[str, str] | None = None,
) -> Schema:
    """The schema of ``frame``: each column's kind (``kinds`` overrides, ``{column: kind}``),
    the columns that are not features and why, the task and the classes."""
    names = [str(c) for c in frame.columns]
    check_target(frame, target)
    for column in [*drop, *(kinds or {})]:
        if column not in names:
            key = "data.drop" if column in drop else "data.kinds"
            raise UserError(
                f"{key} names '{column}', which is not a column of the table; "
                f"{_closest(column, names)}columns: {_listed(names)}"
            )
    for column, kind in (kinds or {}).items():
        if kind not in KINDS:
            raise UserError(f"data.kinds.{column}='{kind}' is not one of {', '.join(KINDS)}")
    task = infer_task(frame[target], target, task)
    columns = []
    for name in names:
        series = frame[name]
        if kinds and name in kinds:
            kind, reason = kinds[name], "set in data.kinds"
        else:
            kind, reason = infer_kind(series, name)
        dropped = None
        if name == target:
            dropped = "the target"
        elif name in drop:
            dropped = "listed in data.drop"
        elif kind == "identifier":
            dropped = reason
        elif kind == "constant":
            dropped = f"constant: {reason}"
        columns.append(Column(name, kind, str(series.dtype), dropped, reason))
    classes: list[str] = []
    if task == "classification":
        classes = sort_labels([str(v) for v in label_texts(frame[target]).dropna().unique()])
        if len(classes) < 2:
            raise UserError(
                f"data.target '{target}' has one value ('{classes[0]}'); a classifier needs two "
                "or more classes"
            )
    schema = Schema(columns, target, task, classes)
    if not schema.features:
        raise UserError(
            f"the table has no feature columns besides the target '{target}' (see the reasons in "
            "schema.json); check data.drop and data.kinds"
        )
    return schema


# --- holding a later table to the schema ---------------------------------------------------------


def check_frame(frame: pd.DataFrame, schema: Schema) -> None:
    """Stop when a feature column is missing from ``frame``, or holds no value that reads as
    its kind; the message names the column."""
    present = {str(c) for c in frame.columns}
    trained = schema.feature_names
    for column in schema.features:
        if column.name not in present:
            raise UserError(
                f"column '{column.name}' ({column.kind}) is missing from the table; the model "
                f"was trained on columns: {_listed(trained)}"
            )
    for column in schema.features:
        _, bad = read_as(frame[column.name], column.kind)
        values = blank_to_na(frame[column.name]).dropna()
        if len(values) and int(bad.sum()) == len(values):
            example = _shown(values.iloc[0])
            raise UserError(
                f"column '{column.name}' should hold {column.kind} values, but none of its values "
                f"reads as one (e.g. '{example}'); the table does not match the run's schema"
            )


def row_problems(frame: pd.DataFrame, schema: Schema) -> dict[int, str]:
    """Row position -> why the row cannot be scored (the first value of a wrong type, or a
    missing column); rows not listed can be scored."""
    problems: dict[int, str] = {}
    present = {str(c) for c in frame.columns}
    what = {"numeric": "a number", "boolean": "true/false", "datetime": "a date"}
    for column in schema.features:
        if column.name not in present:
            return {i: f"column '{column.name}' is missing" for i in range(len(frame))}
        if column.kind not in what:
            continue
        _, bad = read_as(frame[column.name], column.kind)
        values = frame[column.name].to_numpy()
        for position in np.flatnonzero(bad.to_numpy()):
            problems.setdefault(
                int(position),
                f"column '{column.name}': '{_shown(values[position])}' is not {what[column.kind]}",
            )
    return dict(sorted(problems.items()))
