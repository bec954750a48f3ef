"""The seam between evaluation by slice and the kinds of data: what a slice can be cut by.

A kind of data (``data_kind``: ``classification``, ``tabular``) registers a
:class:`SliceColumns` in :data:`SLICE_COLUMNS` through the entry-point group
``mlcycle.slice_columns`` (mlcycle's own in its ``pyproject.toml``): which columns it has
(a manifest's or a SQL query's extra columns, a table's own columns, the images' brightness,
contrast, size and aspect), which it slices by default, and their values for some samples.
The stages ask it; they never test the data module's class.

Numeric columns with fractions or many values are cut into quantile bins; the others (text,
whole numbers of few values) slice by value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry

MISSING = "(missing)"
MAX_VALUES = 12  # a column of whole numbers with more distinct values than this is binned


class SliceColumns:
    """What one kind of data can be sliced by; a kind overrides what it has."""

    unit = "items"  # what a sample is, in the report's lines

    def names(self, data: Any) -> list[str]:
        """Every column the data can be sliced by."""
        return []

    def defaults(self, data: Any) -> list[str]:
        """The columns sliced when none is named."""
        return []

    def values(self, data: Any, positions: Sequence[int], names: Sequence[str]) -> dict[str, list]:
        """Per column in ``names``, its value for each sample at ``positions`` (None: missing)."""
        raise NotImplementedError


SLICE_COLUMNS: Registry[SliceColumns] = Registry(
    "kind of data evaluation by slice reads", "data_kind", "mlcycle.slice_columns"
)


def slice_columns_of(data: Any) -> SliceColumns | None:
    """The part of the kind ``data`` declares, or None when it has none."""
    kind = getattr(data, "data_kind", None)
    return SLICE_COLUMNS.get(kind) if kind and kind in SLICE_COLUMNS else None


def parse_names(text: str | Sequence[str] | None) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` as a list; None: the kind's defaults; ``none``: no slices."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in items if n and n.strip()]
    return [] if names == ["none"] else names


def check_names(wanted: Sequence[str], known: Sequence[str], where: str) -> None:
    """Refuse a column the data lacks, in one line with the closest names."""
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
            hint = f"closest: {', '.join(close)}; " if close else ""
            raise UserError(
                f"slice column '{name}' is not in {where}; {hint}"
                f"columns: {', '.join(known) or 'none'}"
            )


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _bin_label(low: float, high: float, last: bool) -> str:
    return f"[{low:.4g}, {high:.4g}{']' if last else ')'}"


def quantile_bins(values: Sequence[Any], bins: int) -> list[str]:
    """Each value's quantile bin, ``[low, high)`` (the last bin closed); missing ones apart."""
    numbers = np.array([_number(v) for v in values], dtype=float)
    present = numbers[~np.isnan(numbers)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([present.min(), present.max()])
    inner = edges[1:-1]
    labels = [
        _bin_label(edges[i], edges[i + 1], i == len(edges) - 2) for i in range(len(edges) - 1)
    ]
    where = np.searchsorted(inner, numbers, side="right")
    return [MISSING if math.isnan(x) else labels[w] for x, w in zip(numbers, where, strict=True)]


def slice_keys(values: Sequence[Any], bins: int) -> tuple[list[str], str]:
    """Each sample's slice in one column, and how the column was cut (``value`` or ``bins``)."""
    present = [v for v in values if not _missing(v)]
    numeric = bool(present) and all(_number(v) is not None for v in present)
    numbers = {_number(v) for v in present}
    fractional = any(x != int(x) for x in numbers if x is not None)
    if numeric and (len(numbers) > MAX_VALUES or fractional):
        return quantile_bins([None if _missing(v) else v for v in values], bins), "bins"
    shown = [MISSING if _missing(v) else _text(v) for v in values]
    return shown, "value"


def _text(value: Any) -> str:
    number = _number(value)
    if number is not None and not isinstance(value, str) and number == int(number):
        return str(int(number))
    return str(value)
