"""The extra columns of a CSV manifest or SQL query: type, missing share, distribution, and
how they relate to each other (Pearson) and to the label (correlation ratio, Cramer's V)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_CATEGORIES = 30  # more distinct values than this (and most values unique): free text / ids


@dataclass
class Attribute:
    name: str
    kind: str  # numeric, categorical or text
    missing: float  # share of rows without a value, 0..1
    summary: dict[str, Any]
    values: list[Any] = field(repr=False)  # one per row, None when missing
    label_association: float | None = None  # 0 (none) .. 1 (the attribute gives the label)
    association: str = ""  # how it was measured


def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def correlation_ratio(values: np.ndarray, labels: list[str]) -> float:
    """eta: the share of a numeric attribute's spread explained by the class (square root)."""
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    between = 0.0
    for label in set(labels):
        group = values[[lab == label for lab in labels]]
        between += len(group) * float((group.mean() - values.mean()) ** 2)
    return math.sqrt(between / total)


def cramers_v(values: list[str], labels: list[str]) -> float:
    """Association of two categorical variables, 0..1, from the chi-square of their table."""
    rows, cols = sorted(set(values)), sorted(set(labels))
    if len(rows) < 2 or len(cols) < 2:
        return 0.0
    table = np.zeros((len(rows), len(cols)))
    r, c = {v: i for i, v in enumerate(rows)}, {v: i for i, v in enumerate(cols)}
    for v, lab in zip(values, labels, strict=True):
        table[r[v], c[lab]] += 1
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    return math.sqrt(chi2 / (n * (min(table.shape) - 1)))


def _describe(name: str, raw: list[Any], labels: list[str]) -> Attribute:
    present = [(v, lab) for v, lab in zip(raw, labels, strict=True) if not _missing(v)]
    missing = 1 - len(present) / max(len(raw), 1)
    numbers = [_number(v) for v, _ in present]
    if present and all(x is not None for x in numbers):
        arr = np.array(numbers, dtype=float)
        values = [None if _missing(v) else _number(v) for v in raw]
        summary = {
            "min": round(float(arr.min()), 4),
            "median": round(float(np.median(arr)), 4),
            "mean": round(float(arr.mean()), 4),
            "max": round(float(arr.max()), 4),
            "std": round(float(arr.std()), 4),
        }
        eta = correlation_ratio(arr, [lab for _, lab in present]) if len(arr) > 1 else None
        return Attribute(name, "numeric", missing, summary, values, eta, "correlation ratio")
    texts = [str(v) for v, _ in present]
    counts = Counter(texts)
    values = [None if _missing(v) else str(v) for v in raw]
    summary = {"distinct": len(counts), "top": counts.most_common(10)}
    if len(counts) > MAX_CATEGORIES and len(counts) > 0.5 * len(texts):
        return Attribute(name, "text", missing, summary, values)
    v = cramers_v(texts, [lab for _, lab in present]) if texts else None
    return Attribute(name, "categorical", missing, summary, values, v, "Cramer's V")


def describe_attributes(
    metas: list[dict[str, Any] | None], labels: list[str]
) -> tuple[list[Attribute], dict[str, Any]]:
    """Each extra column described, and the Pearson matrix of the numeric ones."""
    names = sorted({k for m in metas for k in (m or {})})
    attributes = [_describe(n, [(m or {}).get(n) for m in metas], labels) for n in names]
    numeric = [a for a in attributes if a.kind == "numeric"]
    matrix = []
    for a in numeric:
        row = []
        for b in numeric:
            pairs = [
                (x, y)
                for x, y in zip(a.values, b.values, strict=True)
                if x is not None and y is not None
            ]
            if len(pairs) < 3:
                row.append(None)
                continue
            x, y = np.array(pairs, dtype=float).T
            ok = x.std() > 0 and y.std() > 0
            row.append(round(float(np.corrcoef(x, y)[0, 1]), 3) if ok else None)
        matrix.append(row)
    return attributes, {"names": [a.name for a in numeric], "pearson": matrix}
