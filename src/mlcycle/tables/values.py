"""A column's values read as text, labels, numbers, true/false or dates.

Text is stripped and the empty text is missing (:func:`blank_to_na`); :func:`label_texts` names
categories and classes (``1.0`` -> ``"1"``); :func:`read_as` reads a column as one of the
schema's kinds and says which values could not be read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRUE = frozenset({"true", "yes", "y", "t", "1", "1.0", "on"})
FALSE = frozenset({"false", "no", "n", "f", "0", "0.0", "off"})


def _is_text(series: pd.Series) -> bool:
    """True when every present value is a string (pandas ``str`` dtype or object of strings)."""
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        return True
    return pd.api.types.is_object_dtype(series) and pd.api.types.infer_dtype(
        series, skipna=True
    ) in ("string", "empty")


def blank_to_na(series: pd.Series) -> pd.Series:
    """Text values stripped; empty text is missing."""
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return series
    if _is_text(series):
        text = series.astype(object).where(series.notna())
        stripped = text.str.strip()
        return stripped.where(stripped.ne("") & stripped.notna())
    text = series.astype(object).where(series.notna())
    text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.where(text.map(lambda v: v != "" if isinstance(v, str) else True))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def _numbers_as_text(series: pd.Series) -> pd.Series:
    """Numbers as text, integers without ``.0``; missing stays missing (vectorized)."""
    values = series.to_numpy(dtype=float, na_value=np.nan)
    whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
    out = np.full(len(values), np.nan, dtype=object)
    out[whole] = values[whole].astype(np.int64).astype(str)
    other = ~whole & ~np.isnan(values)
    out[other] = values[other].astype(str)
    return pd.Series(out, index=series.index, dtype=object)


def label_texts(series: pd.Series) -> pd.Series:
    """Values as the strings a category or class is named by (``1.0`` -> ``"1"``), missing kept."""
    series = blank_to_na(series)
    if pd.api.types.is_bool_dtype(series):
        return series.map(lambda v: str(bool(v)).lower() if pd.notna(v) else np.nan)
    if pd.api.types.is_numeric_dtype(series):
        return _numbers_as_text(series)
    if _is_text(series):
        return series.astype(object).where(series.notna())
    return series.map(
        lambda v: (
            np.nan
            if v is None or (isinstance(v, float) and np.isnan(v))
            else _number_text(v)
            if isinstance(v, float | int | np.number) and not isinstance(v, bool)
            else str(v)
        )
    ).astype(object)


def sort_labels(labels: list[str]) -> list[str]:
    """Numbers by value (``2`` before ``10``), anything else as text."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


# --- reading values as a kind --------------------------------------------------------------------


def parse_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        text = (
            values.astype(object)
            .where(values.notna())
            .map(lambda v: v if v is None or isinstance(v, str) or pd.isna(v) else str(v))
        )
        with _quiet_dates():
            out = pd.to_datetime(text, errors="coerce")
            if out.isna().sum() > text.isna().sum():
                out = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


class _quiet_dates:
    """pandas warns when it guesses a date format per element; the guess is what we want."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.filterwarnings("ignore", message=".*Could not infer format.*")
        warnings.filterwarnings("ignore", message=".*Parsing dates in .* format.*")

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


def read_as(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """``series`` read as ``kind`` and the mask of values that could not be read (missing
    values are missing, not bad). numeric and boolean give floats (boolean: 0/1), datetime
    gives datetime64, the rest gives text (object) with NaN for missing."""
    series = blank_to_na(series)
    present = series.notna()
    if kind == "numeric":
        if pd.api.types.is_bool_dtype(series):
            out = series.astype(float)
        elif pd.api.types.is_numeric_dtype(series):
            out = series.astype(float)
        else:
            out = pd.to_numeric(series.astype(object).where(present), errors="coerce").astype(float)
    elif kind == "boolean":
        text = label_texts(series).map(lambda v: v.lower() if isinstance(v, str) else v)
        out = text.map(lambda v: 1.0 if v in TRUE else 0.0 if v in FALSE else np.nan).astype(float)
    elif kind == "datetime":
        out = parse_dates(series)
    else:
        out = label_texts(series)
    return out, present & out.isna()
