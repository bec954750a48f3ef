"""Training a table from a stream written by ``mlcycle optimize`` (litdata's chunks, local or S3).

:class:`StreamTableData` is :class:`~mlcycle.tables.data.TabularData` with its rows in chunks.
The table's records come from beside the chunks (each row's hashes, key, label and split, the
schema and the fitted pipeline), so the run records the same ``data_manifest.csv``,
``splits.csv``, fingerprint and ``pipeline.json`` as a run on the file, without reading a row.
The MLP's train split is streamed (litdata's StreamingDataset and StreamingDataLoader: sharded
across DDP ranks, nodes and workers, resumable mid-epoch) as the features the pipeline gave
when the stream was written; val is read whole and transformed as the file's. The test split is
apart and only read when asked (``evaluate.py --split test``). Whatever needs every row in
memory (classic and boosted candidates, ``frame('train')``, slices) reads the stream whole.

    python scripts/train.py --config configs/tables/messy.yaml --data.source stream \\
        --data.path s3://bucket/messy-stream
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import torch
from litdata import StreamingDataset
from torch.utils.data import DataLoader

from mlcycle.core.errors import UserError
from mlcycle.data.layout import announce
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_store import StreamSource
from mlcycle.tables.data import TabularData
from mlcycle.tables.pipeline import describe_features
from mlcycle.tables.schema import Schema
from mlcycle.tables.stream_write import PIPELINE_PICKLE, ROWS_FILE, frame_of
from mlcycle.tables.table import SCHEMA_FILE, Table


class StreamedTable(Table):
    """A :class:`Table` whose ``frame`` (every row as read) is read from the stream whole
    the first time something asks for it."""

    def __init__(self, load: Any, **fields: Any) -> None:
        self._load, self._frame = load, None
        super().__init__(frame=None, **fields)

    @property
    def frame(self) -> pd.DataFrame:  # type: ignore[override]
        if self._frame is None:
            self._frame = self._load()
        return self._frame

    @frame.setter
    def frame(self, value: pd.DataFrame | None) -> None:
        self._frame = value


class StreamedRows(StreamingDataset):
    """The train rows' items ``(x, y, position)``, as :class:`~mlcycle.tables.data.RowsDataset`."""

    def __init__(self, y_dtype: torch.dtype, **chunks: Any) -> None:
        super().__init__(**chunks)
        self.y_dtype = y_dtype

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = super().__getitem__(index)
        x = torch.from_numpy(np.asarray(item["x"], dtype=np.float32))
        return x, torch.tensor(item["y"], dtype=self.y_dtype), torch.tensor(item["position"])


class StreamTableData(StreamSource, TabularData):
    """A table from a stream (``mlcycle optimize``'s output): its splits, schema and fitted
    pipeline as written; the config's split and pipeline keys are not applied again.

    Args:
        source: ``stream``.
        path: the stream: a local folder or ``s3://bucket/prefix``.
        source_options: the S3 client's options (``endpoint_url``, ``region_name``...), and
            litdata's ``cache_dir`` and ``max_cache_size`` for the downloaded chunks.
    """

    def __init__(
        self,
        source: str = "stream",
        path: str | None = None,
        source_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(source="stream", path=path, **kwargs)
        self._open_stream(path, source_options, "path")

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = self._read_table()
        return self._table

    def _read_table(self) -> Table:
        record, target = self.record, self.hparams.target
        if target and target != record["target"]:
            raise UserError(
                f"data.target '{target}': the stream at {self.store.url} was written for "
                f"'{record['target']}'; unset data.target or write a stream for it"
            )
        rows = json.loads(self.store.read_text(ROWS_FILE))
        schema = Schema.from_dict(json.loads(self.store.read_text(SCHEMA_FILE)))
        pipeline = pickle.loads(self.store.read_bytes(PIPELINE_PICKLE))  # trusted as a checkpoint
        y_type = np.int64 if schema.task == "classification" else np.float32
        table = StreamedTable(
            lambda: self._whole_frame(rows["dropped"]),
            rows=rows["rows"],
            hashes=rows["hashes"],
            contents=rows["contents"],
            keys=rows["keys"],
            labels=rows["labels"],
            y=np.asarray(rows["y"], dtype=y_type),
            splits=rows["splits"],
            positions={s: np.asarray(rows["positions"][s], dtype=np.int64) for s in SPLITS},
            schema=schema,
            pipeline=pipeline,
            features=describe_features(pipeline),
            skipped=[tuple(s) for s in rows["skipped"]],
            read_rows=record["read_rows"],
            how=f"{record['how']}, as written",
            relabelled=record.get("relabelled", 0),
        )
        counts = ", ".join(f"{s} {len(table.positions[s])}" for s in SPLITS)
        announce(f"stream {self.store.url}: {record['where']}; {table.how} ({counts})")
        return table

    def _items(self, split: str) -> dict[int, dict[str, Any]]:
        """Every item of a split's chunks by position (empty for an empty split)."""
        if not self.record["split_counts"].get(split):
            return {}
        found = StreamingDataset(**self.chunks(split))
        return {int(item["position"]): item for item in found}

    def _frame_of(self, texts: list[str], index: Any) -> pd.DataFrame:
        record = self.record
        frame = frame_of(texts, record["columns"], record["dtypes"])
        frame.index = index
        return frame

    def _whole_frame(self, dropped: dict[str, str]) -> pd.DataFrame:
        texts = {int(p): t for p, t in dropped.items()}
        for split in SPLITS:
            texts |= {p: item["row"] for p, item in self._items(split).items()}
        return self._frame_of([texts[p] for p in range(len(texts))], pd.RangeIndex(len(texts)))

    def frame(self, split: str) -> pd.DataFrame:
        """A split's rows as read, indexed by position: that split's chunks alone."""
        self._check_split(split)
        table = self.table
        positions = table.positions[split]
        if table._frame is not None:
            return table.frame.iloc[positions]
        items = self._items(split)
        return self._frame_of([items[int(p)]["row"] for p in positions], pd.Index(positions))

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Train: the features as written (the stream read whole); val and test: the rows
        transformed by the fitted pipeline, as the file's."""
        self._check_split(split)
        table = self.table
        if split not in table.matrices:
            if split == "train":
                items = self._items("train")
                x = [items[int(p)]["x"] for p in table.positions["train"]]
                table.matrices[split] = np.asarray(x, dtype=np.float32)
            else:
                table.matrices[split] = self._features(self.frame(split).reset_index(drop=True))
        return table.matrices[split], table.y[table.positions[split]]

    @property
    def class_counts(self) -> list[int] | None:
        """Train rows per class, from the records (no row read)."""
        if self.task_kind != "classification":
            return None
        y = self.table.y[self.table.positions["train"]]
        return np.bincount(y, minlength=self.num_classes).tolist()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split != "train" or "train" in self.table.matrices:
            return super()._loader(split, shuffle)  # read whole: a classic model asked for it
        from mlcycle.data.stream_dataset import stream_loader

        y_dtype = torch.int64 if self.task_kind == "classification" else torch.float32
        chunks = self.chunks("train", shuffle=shuffle, seed=self.hparams.split_seed)
        dataset = StreamedRows(y_dtype, **chunks)
        size = self.hparams.batch_size
        return stream_loader(
            dataset, size, self.num_workers, drop_last=shuffle and len(dataset) > size
        )
