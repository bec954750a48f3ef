"""Each column of a table on its own: type, share missing, distinct values, the IQR outliers,
skew and the transform that removes most of it, and text mixed into a column of numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types

SKEW_LIMIT = 1.0  # |skew| above this gets a suggested transform
IQR_K = 1.5  # Tukey's fences: below Q1 - k IQR or above Q3 + k IQR
TOP = 10  # most common values kept per column
SIMPLER = 0.25  # a simpler transform wins when its |skew| is within this of the best one


@dataclass
class Column:
    """What one column holds; ``values`` (numbers, NaN when missing or not a number) only for
    columns read as numbers."""

    name: str
    kind: str  # the schema's kind (mlcycle.tables.schema.KINDS)
    dtype: str
    dropped: str | None  # why it is no feature (the schema's reason), None for a feature
    rows: int
    missing: int
    unique: int  # distinct values that are not missing
    top: list[tuple[str, int]]  # the most common values and their counts
    stats: dict[str, float] | None = None  # min, q1, median, q3, max, mean, std (numbers only)
    skew: float | None = None
    transform: dict[str, Any] | None = None  # {"name", "skew_after", "candidates"} when skewed
    outliers: list[int] = field(default_factory=list)  # row positions outside the IQR fences
    fences: tuple[float, float] | None = None
    mixed: dict[str, Any] | None = None  # numbers and text in one column
    values: np.ndarray | None = field(default=None, repr=False)

    @property
    def missing_share(self) -> float:
        return self.missing / max(self.rows, 1)

    @property
    def top_share(self) -> float:
        """The share of the most common value among the values present."""
        present = self.rows - self.missing
        return self.top[0][1] / present if self.top and present else 0.0

    @property
    def numeric(self) -> bool:
        return self.values is not None

    def summary(self) -> dict[str, Any]:
        """One row of ``columns.csv`` and of the reports' column table."""
        t = self.transform
        return {
            "column": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "dropped": self.dropped or "",
            "missing": self.missing,
            "missing_share": round(self.missing_share, 4),
            "unique": self.unique,
            "top_share": round(self.top_share, 4),
            "outliers": len(self.outliers),
            "skew": None if self.skew is None else round(self.skew, 3),
            "suggested_transform": t["name"] if t else "",
            "pipeline_setting": pipeline_setting(self.name, t["name"]) if t else "",
            "skew_after": t["skew_after"] if t else None,
            "mixed_types": bool(self.mixed),
        }


def missing_mask(series: pd.Series) -> pd.Series:
    """Missing: NaN/None/NaT, or a string of blanks."""
    mask = series.isna()
    if types.is_object_dtype(series) or types.is_string_dtype(series):
        blank = series.map(lambda v: isinstance(v, str) and not v.strip())
        mask = mask | blank.astype(bool)
    return mask


def numbers(series: pd.Series, kind: str) -> np.ndarray | None:
    """The column as float numbers (NaN where missing or not a number), read as training reads
    a numeric column; also numeric identifiers and constants, for their range."""
    from mlcycle.tables.schema import read_as

    if kind == "numeric":
        return read_as(series, "numeric")[0].to_numpy(dtype=float)
    if kind in ("identifier", "constant") and types.is_numeric_dtype(series):
        if not types.is_bool_dtype(series):
            return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return None


def skewness(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    value = float(pd.Series(x).skew())
    return value if math.isfinite(value) else None


def shifted(x: np.ndarray) -> np.ndarray:
    """``x`` moved so that its minimum is 0 when it is negative, as the pipeline's log and sqrt
    do (:class:`mlcycle.tables.steps.Shift`)."""
    return np.maximum(x - min(float(x.min()), 0.0), 0.0)


def suggest_transform(
    x: np.ndarray, limit: float = SKEW_LIMIT, k: float = IQR_K
) -> dict[str, Any] | None:
    """For a column with |skew| above ``limit``: the pipeline transform (``sqrt``, ``log`` as
    log1p, ``yeo-johnson``; ``clip`` at the IQR fences when the skew comes from a few outliers)
    that leaves the least skew, preferring the simpler ones when they come close; with the
    ``data.pipeline`` setting that applies it. None when none of them halves the skew."""
    from scipy import stats

    x = x[np.isfinite(x)]
    before = skewness(x)
    if before is None or abs(before) <= limit or len(np.unique(x)) < 5:
        return None
    candidates = {"sqrt": skewness(np.sqrt(shifted(x))), "log": skewness(np.log1p(shifted(x)))}
    with np.errstate(all="ignore"):
        transformed, lam = stats.yeojohnson(x)
    candidates["yeo-johnson"] = skewness(transformed)
    q1, q3 = np.percentile(x, [25, 75])
    if q3 > q1:
        candidates["clip"] = skewness(np.clip(x, q1 - k * (q3 - q1), q3 + k * (q3 - q1)))
    scored = {k: v for k, v in candidates.items() if v is not None}
    if not scored:
        return None
    best = min(abs(v) for v in scored.values())
    if best > abs(before) / 2:
        return None
    name = next(
        k for k, v in scored.items() if abs(v) <= best + SIMPLER
    )  # in order: simplest first
    out = {
        "name": name,
        "skew_before": round(before, 3),
        "skew_after": round(scored[name], 3),
        "candidates": {k: round(v, 3) for k, v in scored.items()},
    }
    if name == "yeo-johnson":
        out["lambda"] = round(float(lam), 4)
    return out


def pipeline_setting(column: str, transform: str) -> str:
    """The ``data.pipeline`` setting that applies a suggested transform to ``column``."""
    if transform == "clip":
        return f"outliers: {{handle: clip, columns: [{column}]}}"
    return f"transform: {{columns: {{{column}: {transform}}}}}"


def iqr_outliers(x: np.ndarray, k: float = IQR_K) -> tuple[list[int], tuple[float, float] | None]:
    """Row positions outside Tukey's fences, and the fences; none when the IQR is 0 (then
    near-constant says more)."""
    ok = np.isfinite(x)
    if ok.sum() < 4:
        return [], None
    q1, q3 = np.percentile(x[ok], [25, 75])
    iqr = q3 - q1
    if iqr == 0:
        return [], None
    low, high = float(q1 - k * iqr), float(q3 + k * iqr)
    rows = np.flatnonzero(ok & ((x < low) | (x > high)))
    return rows.tolist(), (low, high)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | np.number):
        return True
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


def mixed_types(series: pd.Series, present: pd.Series) -> dict[str, Any] | None:
    """Numbers and text in one column (``12``, ``7.5``, ``n/a``): the share of each and a few of
    the minority; or several Python types in one column read from Parquet or SQL."""
    if not (types.is_object_dtype(series) or types.is_string_dtype(series)):
        return None
    values = series[present]
    if values.empty:
        return None
    py_types = sorted({type(v).__name__ for v in values})
    is_number = values.map(_is_number).astype(bool)
    share = float(is_number.mean())
    if 0.5 <= share < 1:
        examples = list(dict.fromkeys(str(v) for v in values[~is_number]))[:5]
        return {
            "numbers": round(share, 4),
            "text": round(1 - share, 4),
            "examples": examples,
            "types": py_types,
        }
    if len(py_types) > 1:
        return {
            "numbers": round(share, 4),
            "text": round(1 - share, 4),
            "examples": [],
            "types": py_types,
        }
    return None


def describe_column(
    series: pd.Series,
    kind: str,
    dropped: str | None = None,
    iqr_k: float = IQR_K,
    skew_limit: float = SKEW_LIMIT,
) -> Column:
    """Everything :class:`Column` holds for one column (``series`` keeps the table's row order)."""
    series = series.reset_index(drop=True)
    gone = missing_mask(series)
    present = ~gone
    counts = series[present].astype(str).value_counts()
    col = Column(
        name=str(series.name),
        kind=kind,
        dtype=str(series.dtype),
        dropped=dropped,
        rows=len(series),
        missing=int(gone.sum()),
        unique=int(series[present].nunique()),
        top=[(str(v), int(n)) for v, n in counts.head(TOP).items()],
        mixed=mixed_types(series, present),
    )
    x = numbers(series, kind)
    if x is not None and np.isfinite(x).any():
        finite = x[np.isfinite(x)]
        q = np.percentile(finite, [0, 25, 50, 75, 100])
        col.stats = {
            "min": float(q[0]),
            "q1": float(q[1]),
            "median": float(q[2]),
            "q3": float(q[3]),
            "max": float(q[4]),
            "mean": float(finite.mean()),
            "std": float(finite.std()),
        }
        col.values = x
        col.skew = skewness(x)
        if kind == "numeric":
            col.outliers, col.fences = iqr_outliers(x, iqr_k)
            col.transform = suggest_transform(x, skew_limit, iqr_k)
    return col


def describe_columns(
    frame: pd.DataFrame, schema: Any, iqr_k: float = IQR_K, skew_limit: float = SKEW_LIMIT
) -> list[Column]:
    """Every column of ``frame`` in its order, typed by ``schema``."""
    by_name = {c.name: c for c in schema.columns}
    out = []
    for name in frame.columns:
        info = by_name.get(name)
        kind = info.kind if info is not None else "text"
        dropped = info.dropped if info is not None else "not in the schema"
        out.append(describe_column(frame[name], kind, dropped, iqr_k, skew_limit))
    return out
