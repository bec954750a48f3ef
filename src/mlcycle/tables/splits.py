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

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.data.splits import assign_splits, check_fractions, draw
from mlcycle.tables.values import label_texts

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


def group_split(
    groups: list[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Splits in which every group's rows stay together: each group draws its split from
    ``sha256(seed, group)``. A split left without a group gets the group whose draw lies
    closest to it (taken from the split with the most groups)."""
    check_fractions(val_fraction, test_fraction)
    names = sorted(set(groups))
    wanted = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    if len(names) < len(wanted):
        raise UserError(
            f"data.group_column has {len(names)} group(s); {'/'.join(wanted)} need at least "
            f"{len(wanted)} (every group stays in one split)"
        )
    draws = {g: draw(seed, f"group:{g}") for g in names}

    def split_of(u: float) -> str:
        return (
            "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        )

    assigned = {g: split_of(u) for g, u in draws.items()}
    middle = {"test": test_fraction / 2, "val": test_fraction + val_fraction / 2, "train": 1.0}
    for split in wanted:
        if split in assigned.values():
            continue
        sizes = Counter(assigned.values())
        donor = max((s for s in sizes if sizes[s] > 1), key=lambda s: sizes[s])
        pick = min(
            (g for g, s in assigned.items() if s == donor),
            key=lambda g: abs(draws[g] - middle[split]),
        )
        assigned[pick] = split
    return [assigned[g] for g in groups]


def time_split(
    times: pd.Series, hashes: list[str], val_fraction: float, test_fraction: float
) -> list[str]:
    """The oldest ``1 - val - test`` of the rows train, the next ``val`` validate and the most
    recent ``test`` test; the cuts fall between two times, so rows of one time share a split."""
    check_fractions(val_fraction, test_fraction)
    n = len(hashes)
    values = times.to_numpy()
    order = sorted(range(n), key=lambda i: (values[i], hashes[i]))
    ordered = values[order]

    def cut(share: float) -> object:
        return ordered[min(n - 1, int(round(n * share)))]

    val_start = cut(1 - val_fraction - test_fraction)
    test_start = cut(1 - test_fraction) if test_fraction > 0 else None
    splits = []
    for v in values:
        if test_start is not None and v >= test_start:
            splits.append("test")
        elif v >= val_start:
            splits.append("val")
        else:
            splits.append("train")
    counts = Counter(splits)
    wanted = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    empty = [s for s in wanted if not counts[s]]
    if empty:
        raise UserError(
            f"data.time_column has too few distinct times for a {empty[0]} split "
            f"({len(np.unique(ordered))} distinct); lower data.val_fraction/test_fraction or "
            "split without a time column"
        )
    return splits
