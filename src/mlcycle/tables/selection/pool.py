"""A table's train+val rows as a comparison's pool, cut into content-stable folds.

The same fold rule as for images (:func:`mlcycle.selection.folds.assign_folds`): within each
class (one stratum for regression) the rows' content hashes (the row without its target, as the
table's own splits use) are ordered by a seeded draw and dealt to the folds, so identical rows
share a fold and the order of the file changes nothing. Each fold is a ``splits.csv`` keyed as
``TabularData`` keys its rows (``data.id_column`` or the content hash): fold k is val, the other
folds train, the test split stays test (sealed). ``folds/schema.json`` beside the fold files
makes every fold run read the table with the base run's schema.

A table split by ``data.group_column`` is cut into grouped folds (no group in two folds), one
split by ``data.time_column`` into forward-chaining folds (no fold trains on rows later than
those it validates; ``fold_gap`` rows left out between): :func:`mlcycle.selection.folds.cut_folds`.
``folds.csv`` then has the group or the time of each row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.selection.folds import Pool, assignment_digest, cut_folds
from mlcycle.tables.data import SCHEMA_FILE
from mlcycle.tables.values import label_texts, read_as

POOL_SPLITS = ("train", "val")


@dataclass
class TablePool(Pool):
    """The train+val rows of a table (``data``: the base TabularData, its table read;
    ``positions``: in the table's usable rows; ``paths``: the rows' keys, as in splits.csv),
    with their folds. ``target``: class indices (classification) or values (regression)."""

    classify: bool = True

    @property
    def row_of_position(self) -> dict[int, int]:
        return {p: i for i, p in enumerate(self.positions)}

    def write(self, out: Path, folds: int) -> list[Path]:
        """``folds.csv`` (key, label, fold) and ``folds/fold<k>.csv``, with
        ``folds/schema.json``."""
        return write_table_folds(self, out, folds)


def build_table_pool(data: Any, folds: int, seed: int, gap: int = 0) -> TablePool:
    """The pool of ``data``'s train+val rows (also train rows the pipeline's
    ``drop_rows_over`` left out: a fold's model may predict them); by group or by time when
    the table is split so, ``gap``: rows left out before each time fold's validation rows."""
    table = data.table
    classify = data.task_kind == "classification"
    rows = sorted(
        (i for i, s in enumerate(table.splits) if s in POOL_SPLITS),
        key=lambda i: (table.hashes[i], table.keys[i]),
    )
    hashes = [table.hashes[i] for i in rows]
    keys = [table.keys[i] for i in rows]
    strata = [table.labels[i] for i in rows] if classify else None
    groups, times = row_groups(data, rows), row_times(data, rows)
    cut = cut_folds(keys, hashes, strata, folds, seed, groups, times, gap)
    # A fold file has one line per key: rows sharing a key (identical rows without an id, even
    # when their labels disagree) take one fold, the one the file will say.
    by_key = dict(zip(keys, cut.folds, strict=True))
    kept = [j for j, k in enumerate(keys) if by_key[k] >= 0]  # time folds: the oldest only train
    positions = [rows[j] for j in kept]
    fold_of = [by_key[keys[j]] for j in kept]
    return TablePool(
        data=data,
        positions=positions,
        paths=[keys[j] for j in kept],
        target=np.asarray(table.y[positions], dtype=np.int64 if classify else np.float64),
        folds=np.asarray(fold_of),
        class_names=list(data.class_names) if classify else [],
        digest=assignment_digest(keys, hashes, [by_key[k] for k in keys], cut.how),
        plan=cut.plan,
        how=cut.how,
        classify=classify,
    )


def row_groups(data: Any, rows: list[int]) -> list[str] | None:
    """``data.group_column``'s value of each row (a row without one is its own group)."""
    column = data.hparams.group_column
    if not column:
        return None
    table = data.table
    values = label_texts(table.frame[column])
    return [
        f"row:{table.hashes[i]}" if pd.isna(values.iloc[i]) else f"group:{values.iloc[i]}"
        for i in rows
    ]


def row_times(data: Any, rows: list[int]) -> pd.Series | None:
    """``data.time_column``'s time of each row, read as the table's split read it."""
    column = data.hparams.time_column
    if not column:
        return None
    table = data.table
    values, _ = read_as(table.frame[column], table.schema.column(column).kind)
    return values.iloc[rows].reset_index(drop=True)


def write_table_folds(pool: TablePool, out: Path, folds: int) -> list[Path]:
    table, hp = pool.data.table, pool.data.hparams
    column = hp.time_column or hp.group_column
    shown = (
        [str(v) for v in table.frame[column].iloc[pool.positions]] if column else [None] * len(pool)
    )
    with (out / "folds.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "fold", *([column] if column else [])))
        for position, key, fold, value in zip(
            pool.positions, pool.paths, pool.folds, shown, strict=True
        ):
            writer.writerow((key, table.labels[position], int(fold), *([value] if column else [])))
    folder = out / "folds"
    folder.mkdir(exist_ok=True)
    (folder / SCHEMA_FILE).write_text(json.dumps(table.schema.to_dict(), indent=2) + "\n")
    files = []
    for fold in range(folds):
        path = folder / f"fold{fold}.csv"
        roles = pool.roles(fold)
        written: set[str] = set()
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("path", "label", "split"))
            for key, label, split in zip(table.keys, table.labels, table.splits, strict=True):
                if key in written:
                    continue
                written.add(key)
                writer.writerow((key, label, roles[key] if split in POOL_SPLITS else split))
        files.append(path)
    return files
