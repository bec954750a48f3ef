"""The pipeline's own transformers: the steps scikit-learn has no transformer for.

Every other step of :mod:`mlcycle.tables.pipeline` is a stock scikit-learn transformer that
skl2onnx converts. These are small, keep their learned values in plain arrays and dicts, and
each says in its docstring how it maps to ONNX (the export registers a converter for it, or
runs it as a documented pre-step). Every one records why it did what it did in ``reasons_``
(``[{"step", "column", "reason"}]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlcycle.core.errors import UserError
from mlcycle.tables.values import read_as

MISSING_TEXT = ""  # a missing category after Coerce (skl2onnx imputes strings, not NaN)
DATE_PARTS = ("year", "quarter", "month", "day", "dayofyear", "weekday", "hour", "minute")
CYCLES = {"month": 12, "weekday": 7, "hour": 24, "dayofyear": 366, "minute": 60, "quarter": 4}
STATS = ("mean", "median", "std", "min", "max", "sum", "count")


def reason(step: str, column: str, text: str) -> dict[str, str]:
    return {"step": step, "column": column, "reason": text}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class Coerce(TransformerMixin, BaseEstimator):
    """The feature columns, in schema order, each read as its kind: numeric and boolean as
    floats (boolean 0/1, missing NaN), datetime as datetime64, categorical and text as strings
    with ``""`` for missing. A value that cannot be read as its kind becomes missing (predict
    reports such rows through :func:`mlcycle.tables.schema.row_problems` first).

    ONNX: a pre-step (the graph's inputs are the coerced columns: float for numeric and boolean,
    string for categorical and text).
    """

    def __init__(self, kinds: dict[str, str] | None = None) -> None:
        self.kinds = kinds

    def fit(self, X: pd.DataFrame, y: Any = None) -> Coerce:
        self.columns_ = list(self.kinds or {})
        self.reasons_: list[dict[str, str]] = []
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        kinds = self.kinds or {}
        present = {str(c) for c in X.columns}
        for column, kind in kinds.items():
            if column not in present:
                raise UserError(
                    f"column '{column}' ({kind}) is missing from the table; the pipeline was "
                    f"fitted on columns: {', '.join(kinds)}"
                )
        out = {}
        for column, kind in kinds.items():
            values, _ = read_as(X[column], kind)
            if kind in ("categorical", "text"):
                values = values.fillna(MISSING_TEXT).astype(object)
            out[column] = values.reset_index(drop=True)
        return pd.DataFrame(out)


class DateParts(TransformerMixin, BaseEstimator):
    """Each datetime column becomes its parts (``year``, ``month``, ``weekday``, ``hour``, ...)
    as numbers, and with ``cyclic`` the periodic ones also as ``sin``/``cos`` pairs (December
    next to January). A part that is constant on train (``hour`` of plain dates) is left out.

    ONNX: a pre-step (parsing date text has no ONNX operator); its outputs are float inputs.
    """

    def __init__(
        self, columns: list[str] | None = None, parts: list[str] | None = None, cyclic: bool = True
    ) -> None:
        self.columns, self.parts, self.cyclic = columns, parts, cyclic

    @staticmethod
    def _part(values: pd.Series, part: str) -> np.ndarray:
        if part == "weekday":  # Monday 0
            return values.dt.day_of_week.to_numpy(dtype=float)
        return getattr(values.dt, part).to_numpy(dtype=float)

    def fit(self, X: pd.DataFrame, y: Any = None) -> DateParts:
        self.parts_: dict[str, list[str]] = {}
        self.reasons_ = []
        for column in self.columns or []:
            kept, skipped = [], []
            for part in self.parts or []:
                values = self._part(X[column], part)
                present = values[~np.isnan(values)]
                (kept if len(np.unique(present)) > 1 else skipped).append(part)
            self.parts_[column] = kept
            cyc = [p for p in kept if self.cyclic and p in CYCLES]
            text = ", ".join(kept) or "no part"
            if cyc:
                text += f"; cyclic sin/cos of {', '.join(cyc)}"
            if skipped:
                text += f" ({', '.join(skipped)} constant on train: left out)"
            self.reasons_.append(reason("dates", column, text))
        return self

    def output_names(self) -> list[str]:
        names = []
        for column, parts in self.parts_.items():
            for part in parts:
                names.append(f"{column}_{part}")
                if self.cyclic and part in CYCLES:
                    names += [f"{column}_{part}_sin", f"{column}_{part}_cos"]
        return names

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.drop(columns=list(self.parts_)).copy()
        for column, parts in self.parts_.items():
            for part in parts:
                values = self._part(X[column], part)
                out[f"{column}_{part}"] = values
                if self.cyclic and part in CYCLES:
                    start = 1 if part in ("month", "quarter", "dayofyear") else 0
                    angle = 2 * np.pi * (values - start) / CYCLES[part]
                    out[f"{column}_{part}_sin"] = np.sin(angle)
                    out[f"{column}_{part}_cos"] = np.cos(angle)
        return out


class GroupAggregates(TransformerMixin, BaseEstimator):
    """New columns ``<column>_<stat>_by_<by>``: a statistic of a numeric column per value of a
    group column, learned on train. A group unseen in train gets the statistic over all of
    train (``count``: 0).

    ONNX: per output, ``ai.onnx.ml.LabelEncoder`` from the group's string to ``table_[name]``
    with ``defaults_[name]`` as the default; or a pre-step.
    """

    def __init__(self, specs: list[dict[str, Any]] | None = None) -> None:
        self.specs = specs

    @staticmethod
    def _keys(values: pd.Series) -> pd.Series:
        from mlcycle.tables.values import label_texts

        return label_texts(values).fillna(MISSING_TEXT).replace({"": MISSING_TEXT})

    def fit(self, X: pd.DataFrame, y: Any = None) -> GroupAggregates:
        self.tables_: dict[str, dict[str, float]] = {}
        self.defaults_: dict[str, float] = {}
        self.sources_: dict[str, tuple[str, str, str]] = {}
        self.reasons_ = []
        for spec in self.specs or []:
            column, by = spec["column"], spec["by"]
            values = pd.to_numeric(X[column], errors="coerce").astype(float)
            keys = self._keys(X[by])
            grouped = values.groupby(keys)
            for stat in spec["stats"]:
                name = f"{column}_{stat}_by_{by}"
                table = grouped.agg(stat)
                default = 0.0 if stat == "count" else float(getattr(values, stat)())
                self.tables_[name] = {
                    str(k): float(v) if pd.notna(v) else default for k, v in table.items()
                }
                self.defaults_[name] = default
                self.sources_[name] = (column, by, stat)
                self.reasons_.append(
                    reason(
                        "aggregate",
                        name,
                        f"{stat} of '{column}' per '{by}' on train ({len(table)} groups; "
                        f"unseen groups get {_fmt(default)})",
                    )
                )
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        for name, (_, by, _) in self.sources_.items():
            keys = self._keys(X[by])
            table, default = self.tables_[name], self.defaults_[name]
            out[name] = keys.map(table).astype(float).fillna(default).to_numpy()
        return out


class _ArrayStep(TransformerMixin, BaseEstimator):
    """A step inside a ColumnTransformer branch: 2-D float arrays in, names passed on."""

    def _names_in(self, input_features: Any) -> list[str]:
        if input_features is not None:
            return [str(c) for c in input_features]
        return [str(c) for c in getattr(self, "feature_names_in_", [])] or [
            f"x{i}" for i in range(self.n_features_in_)
        ]

    def _start(self, X: Any) -> np.ndarray:
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        array = np.asarray(X, dtype=float)
        self.n_features_in_ = array.shape[1]
        return array

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self._names_in(input_features), dtype=object)


class MissingFlags(_ArrayStep):
    """One 0/1 column per input column: 1 where the value is missing; named ``names`` (default
    ``<column>_missing``).

    ONNX: ``IsNaN`` then ``Cast`` to float.
    """

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = names

    def fit(self, X: Any, y: Any = None) -> MissingFlags:
        self._start(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.isnan(np.asarray(X, dtype=float)).astype(float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.names or [f"{c}_missing" for c in self._names_in(input_features)]
        return np.asarray(names, dtype=object)


def outlier_bounds(values: np.ndarray, rule: str, factor: float) -> tuple[float, float]:
    """``[q1 - factor * IQR, q3 + factor * IQR]`` (``iqr``) or ``mean -/+ factor * std``
    (``zscore``) of the non-missing values."""
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return -np.inf, np.inf
    if rule == "iqr":
        q1, q3 = np.percentile(present, [25, 75])
        return float(q1 - factor * (q3 - q1)), float(q3 + factor * (q3 - q1))
    mean, std = float(present.mean()), float(present.std())
    return mean - factor * std, mean + factor * std


class Clip(_ArrayStep):
    """Values clipped to bounds learned on train (``rule``: ``iqr`` or ``zscore``, ``factor``).

    ONNX: ``Max(x, lower_)`` then ``Min(., upper_)`` (per-column constant arrays).
    """

    def __init__(self, rule: str = "iqr", factor: float = 1.5) -> None:
        self.rule, self.factor = rule, factor

    def fit(self, X: Any, y: Any = None) -> Clip:
        array = self._start(X)
        bounds = [
            outlier_bounds(array[:, j], self.rule, self.factor) for j in range(array.shape[1])
        ]
        self.lower_ = np.asarray([b[0] for b in bounds])
        self.upper_ = np.asarray([b[1] for b in bounds])
        self.outside_ = ((array < self.lower_) | (array > self.upper_)).sum(axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.clip(np.asarray(X, dtype=float), self.lower_, self.upper_)


class OutlierFlags(_ArrayStep):
    """One 0/1 column ``<column>_outlier`` per input column that had outliers on train: 1 where
    the value lies outside the train bounds (``rule``, ``factor``: see :class:`Clip`).

    ONNX: ``Less(x, lower_)`` or ``Greater(x, upper_)`` on the kept columns, then ``Cast``.
    """

    def __init__(self, rule: str = "iqr", factor: float = 1.5) -> None:
        self.rule, self.factor = rule, factor

    def fit(self, X: Any, y: Any = None) -> OutlierFlags:
        array = self._start(X)
        bounds = [
            outlier_bounds(array[:, j], self.rule, self.factor) for j in range(array.shape[1])
        ]
        lower = np.asarray([b[0] for b in bounds])
        upper = np.asarray([b[1] for b in bounds])
        outside = ((array < lower) | (array > upper)).sum(axis=0)
        self.keep_ = np.flatnonzero(outside > 0)
        self.lower_, self.upper_, self.outside_ = lower, upper, outside
        return self

    def transform(self, X: Any) -> np.ndarray:
        array = np.asarray(X, dtype=float)[:, self.keep_]
        return ((array < self.lower_[self.keep_]) | (array > self.upper_[self.keep_])).astype(float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self._names_in(input_features)
        return np.asarray([f"{names[j]}_outlier" for j in self.keep_], dtype=object)


class Shift(_ArrayStep):
    """``log``: ``log1p(max(x - shift_, 0))``; ``sqrt``: ``sqrt(max(x - shift_, 0))``, where
    ``shift_`` is the column's train minimum when it is negative (else 0), so that the
    transform is defined for every train value.

    ONNX: ``Sub``, ``Max`` with 0, then ``Log(1 + .)`` or ``Sqrt``.
    """

    def __init__(self, func: str = "log") -> None:
        self.func = func

    def fit(self, X: Any, y: Any = None) -> Shift:
        array = self._start(X)
        low = np.nanmin(array, axis=0) if len(array) else np.zeros(array.shape[1])
        self.shift_ = np.where(np.isfinite(low) & (low < 0), low, 0.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        moved = np.maximum(np.asarray(X, dtype=float) - self.shift_, 0.0)
        return np.log1p(moved) if self.func == "log" else np.sqrt(moved)


class CategoryCodes(_ArrayStep):
    """Integer codes for the ``embedding`` encoding: 1..n for the train categories seen at
    least ``min_frequency`` times (most frequent first), 0 for missing, rare and unseen ones.

    ONNX: ``ai.onnx.ml.LabelEncoder`` (``keys_strings=categories_[j]``, ``values_int64s=1..n``,
    ``default_int64=0``) per column, then ``Cast`` to float.
    """

    def __init__(self, min_frequency: int = 1, max_categories: int | None = None) -> None:
        self.min_frequency, self.max_categories = min_frequency, max_categories

    def fit(self, X: Any, y: Any = None) -> CategoryCodes:
        frame = pd.DataFrame(X)
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.categories_: list[list[str]] = []
        for j in range(frame.shape[1]):
            counts = frame.iloc[:, j].astype(str).value_counts()
            counts = counts[(counts.index != MISSING_TEXT) & (counts >= self.min_frequency)]
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.categories_.append([k for k, _ in ordered][: self.max_categories])
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.zeros(frame.shape, dtype=float)
        for j, categories in enumerate(self.categories_):
            codes = {c: i + 1 for i, c in enumerate(categories)}
            out[:, j] = frame.iloc[:, j].astype(str).map(codes).fillna(0).to_numpy(dtype=float)
        return out

    @property
    def cardinalities(self) -> list[int]:
        """Codes per column, 0 included (``n + 1``)."""
        return [len(c) + 1 for c in self.categories_]
