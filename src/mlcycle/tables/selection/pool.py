"""A table's train+val rows as a comparison's pool, cut into content-stable folds.

The same fold rule as for images (:func:`mlcycle.selection.folds.assign_folds`): within each
class (one stratum for regression) the rows' content hashes (the row without its target, as the
table's own splits use) are ordered by a seeded draw and dealt to the folds, so identical rows
share a fold and the order of the file changes nothing. Each fold is a ``splits.csv`` keyed as
``TabularData`` keys its rows (``data.id_column`` or the content hash): fold k is val, the other
folds train, the test split stays test (sealed). ``folds/schema.json`` beside the fold files
makes every fold run read the table with the base run's schema.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.selection.folds import Pool, assign_folds, assignment_digest
from mlcycle.tables.data import SCHEMA_FILE

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


def build_table_pool(data: Any, folds: int, seed: int) -> TablePool:
    """The pool of ``data``'s train+val rows (also train rows the pipeline's
    ``drop_rows_over`` left out: a fold's model may predict them)."""
    table = data.table
    classify = data.task_kind == "classification"
    positions = sorted(
        (i for i, s in enumerate(table.splits) if s in POOL_SPLITS),
        key=lambda i: (table.hashes[i], table.keys[i]),
    )
    hashes = [table.hashes[i] for i in positions]
    keys = [table.keys[i] for i in positions]
    strata = [table.labels[i] if classify else "rows" for i in positions]
    assigned = assign_folds(hashes, strata, folds, seed)
    # A fold file has one line per key: rows sharing a key (identical rows without an id, even
    # when their labels disagree) take one fold, the one the file will say.
    by_key = dict(zip(keys, assigned, strict=True))
    fold_of = [by_key[k] for k in keys]
    target = table.y[positions]
    return TablePool(
        data=data,
        positions=positions,
        paths=keys,
        target=np.asarray(target, dtype=np.int64 if classify else np.float64),
        folds=np.asarray(fold_of),
        class_names=list(data.class_names) if classify else [],
        digest=assignment_digest(keys, hashes, fold_of),
        classify=classify,
    )


def write_table_folds(pool: TablePool, out: Path, folds: int) -> list[Path]:
    table = pool.data.table
    with (out / "folds.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "fold"))
        for position, key, fold in zip(pool.positions, pool.paths, pool.folds, strict=True):
            writer.writerow((key, table.labels[position], int(fold)))
    folder = out / "folds"
    folder.mkdir(exist_ok=True)
    (folder / SCHEMA_FILE).write_text(json.dumps(table.schema.to_dict(), indent=2) + "\n")
    fold_of = dict(zip(pool.paths, (int(f) for f in pool.folds), strict=True))
    files = []
    for fold in range(folds):
        path = folder / f"fold{fold}.csv"
        written: set[str] = set()
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("path", "label", "split"))
            for key, label, split in zip(table.keys, table.labels, table.splits, strict=True):
                if key in written:
                    continue
                written.add(key)
                if split in POOL_SPLITS:
                    split = "val" if fold_of[key] == fold else "train"
                writer.writerow((key, label, split))
        files.append(path)
    return files
