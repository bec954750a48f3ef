"""Train/val/test splits of a table's rows, as for images: a function of each row's content.

A row's content hash is the sha256 of its values (column names sorted, numbers written the
same whether a file stores ``1`` or ``1.0``), so neither the order of the rows nor that of the
columns changes it; the data module hashes the row without its target, so relabelling a row
never moves it. Three ways to split:

* **drawn** (default): each row draws a number from ``sha256(seed, content hash)``
  (:func:`mlcycle.data.splits.assign_splits`), stratified by class for classification;
  identical rows always share a split;
* **by group** (``data.group_column``): each *group* draws, so all rows of a group land in one
  split (no customer in both train and test);
* **by time** (``data.time_column``): the oldest rows train, the next ones validate, the most
  recent ones test; rows with the same time share a split.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.data.splits import assign_splits, check_fractions, group_split, time_split
from mlcycle.tables.values import label_texts

__all__ = ["drawn_split", "group_split", "row_hashes", "time_split"]

SEP_VALUE, SEP_ROW = "\x1e", "\x1f"


def _texts(series: pd.Series) -> list[str]:
    """Each value as canonical text ('' when missing)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return [v.isoformat() if pd.notna(v) else "" for v in series]
    return label_texts(series).fillna("").astype(str).tolist()


def row_hashes(frame: pd.DataFrame) -> list[str]:
    """The sha256 of each row's content, independent of row and column order."""
    columns = sorted(str(c) for c in frame.columns)
    texts = [_texts(frame[c]) for c in columns]
    hashes = []
    for i in range(len(frame)):
        line = SEP_ROW.join(f"{c}{SEP_VALUE}{t[i]}" for c, t in zip(columns, texts, strict=True))
        hashes.append(hashlib.sha256(line.encode()).hexdigest())
    return hashes


def drawn_split(
    hashes: list[str], strata: list[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Content-stable splits, each stratum (class) in the same proportions."""
    check_fractions(val_fraction, test_fraction)
    wanted = 1 + (val_fraction > 0) + (test_fraction > 0)
    counts = Counter(strata)
    small = sorted((n, s) for s, n in counts.items() if n < wanted)
    if small:
        n, label = small[0]
        raise UserError(
            f"class '{label}' has {n} row(s); the train/val/test splits need at least {wanted} of "
            "each class. Add rows, drop the class, or set data.test_fraction=0"
        )
    return assign_splits([None] * len(hashes), hashes, strata, val_fraction, test_fraction, seed)
