"""``mlcycle optimize`` for tables: a :class:`~mlcycle.tables.data.TabularData`'s rows written
into litdata's chunks (the ``tabular`` kind of :mod:`mlcycle.data.stream_kinds`, read back by
:class:`~mlcycle.tables.stream.StreamTableData`).

The table is read, split and its pipeline fitted on the train rows once, as train.py would.
Each split goes to its own folder of chunks (``OUT/train``, ``OUT/val``, the sealed
``OUT/test``); an item is a row as read (JSON, with its position in the table) and, in train,
the row's features as the fitted pipeline gave them (target encoding cross-fitted) and its
target, so the MLP trains on exactly the file's matrix. Train is written in a seeded shuffled
order. Beside the chunks: the run records (``data_manifest.csv``, ``splits.csv``,
``skipped_files.csv``, ``data.json``, ``schema.json``, ``pipeline.json``), ``table_rows.json``
(each row's number, hashes, key, label, target and split: the fingerprint without reading a
chunk) and ``pipeline.pkl``, the fitted pipeline (trusted like a checkpoint: it is a pickle).
"""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_kinds import StreamKind, copy_records, write_split
from mlcycle.data.stream_store import Store
from mlcycle.tables.table import PIPELINE_FILE, SCHEMA_FILE

RECORDS = ("data_manifest.csv", "splits.csv", "skipped_files.csv", "data.json")
RECORDS += (SCHEMA_FILE, PIPELINE_FILE)
ROWS_FILE = "table_rows.json"
PIPELINE_PICKLE = "pipeline.pkl"


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def row_texts(frame: pd.DataFrame) -> list[str]:
    """Each row of ``frame`` as a JSON list of its values (missing: null; floats exact)."""
    values = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return [json.dumps([_plain(v) for v in row], default=str) for row in values]


def frame_of(texts: list[str], columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """The frame :func:`row_texts` came from, its column types restored."""
    frame = pd.DataFrame([json.loads(t) for t in texts], columns=columns, dtype=object)
    for name in columns:
        kind = dtypes[name]
        if kind.startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name]).astype(kind)
        elif kind == "object":
            frame[name] = frame[name].where(frame[name].notna(), np.nan)
        else:
            frame[name] = frame[name].astype(kind)
    return frame


def table_item(row: tuple) -> dict[str, Any]:
    """One chunk item: the row as read and its position; in train also its features and target."""
    position, text, x, y = row
    item: dict[str, Any] = {"position": int(position), "row": text}
    if x is not None:
        item |= {"x": x, "y": y}
    return item


def table_rows(table: Any) -> dict[str, Any]:
    """``table_rows.json``: what the reader's table holds besides the rows themselves."""
    return {
        "rows": table.rows,
        "hashes": table.hashes,
        "contents": table.contents,
        "keys": table.keys,
        "labels": table.labels,
        "y": table.y.tolist(),
        "splits": table.splits,
        "positions": {s: table.positions[s].tolist() for s in SPLITS},
        "skipped": [list(s) for s in table.skipped],
    }


def _split_rows(dm: Any, split: str, texts: list[str]) -> list[tuple]:
    table = dm.table
    positions = table.positions[split].tolist()
    if split != "train":
        return [(p, texts[p], None, None) for p in positions]
    x, y = dm.arrays("train")  # the cross-fitted matrix the MLP trains on, row for row
    rows = [(p, texts[p], x[i], y[i].item()) for i, p in enumerate(positions)]
    random.Random(0).shuffle(rows)  # litdata shuffles chunks and short runs within them
    return rows


def write_rows(dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB") -> dict:
    """Write ``dm``'s rows (train, val, the sealed test apart) and records; its record."""
    import litdata

    table = dm.table  # reads, splits and fits once
    texts = row_texts(table.frame)
    counts = {}
    for split in SPLITS:
        rows = _split_rows(dm, split, texts)
        counts[split] = len(rows)
        if rows:
            print(f"writing {split}: {len(rows)} rows to {store.join(split)}", flush=True)
            write_split(store, split, table_item, rows, workers, chunk_bytes)
    kept = set().union(*(table.positions[s].tolist() for s in SPLITS))
    dropped = {p: texts[p] for p in range(len(texts)) if p not in kept}
    store.write_text(ROWS_FILE, json.dumps({**table_rows(table), "dropped": dropped}) + "\n")
    store.write_bytes(PIPELINE_PICKLE, pickle.dumps(table.pipeline))
    copy_records(dm, store, RECORDS)
    import sklearn

    return {
        "fingerprint": dm.fingerprint,
        "target": table.schema.target,
        "task": table.schema.task,
        "columns": [str(c) for c in table.frame.columns],
        "dtypes": {str(c): str(t) for c, t in table.frame.dtypes.items()},
        "read_rows": table.read_rows,
        "how": table.how,
        "relabelled": table.relabelled,
        "source": dm.hparams.source,
        "where": f"{dm.hparams.source} table '{dm.hparams.path or dm.hparams.query}'",
        "split_counts": counts,
        "streamed": ["train", "val"],
        "sealed": "test",
        "litdata": litdata.__version__,
        "sklearn": sklearn.__version__,
    }


TABULAR = StreamKind(write_rows, "mlcycle.tables.stream.StreamTableData", "rows", place="path")
