"""``TabularData``: a table (CSV, Parquet, SQL or built-in) as a LightningDataModule.

The table is read, typed, split and its pipeline fitted on the train rows once, on first use
(:func:`~mlcycle.tables.table.build_table`). The loaders yield ``(x, y, index)``: x float32
``[B, num_features]``, y class indices (int64) or values (float32), index the rows' positions
in the table.

The run record is the image data modules': ``data_manifest.csv`` has one line per row (its key,
content hash, label and split), so the fingerprint, the resume check and the sealed test set's
ledger (``evaluate.py --split test`` hashes the test rows) work unchanged; ``splits.csv`` keys
each row by ``data.id_column`` or its content hash; ``schema.json`` and ``pipeline.json`` (the
resolved config, every step's reason and what it learned) come with them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from sklearn.pipeline import Pipeline
from torch.utils.data import DataLoader, Dataset

from mlcycle.core.errors import UserError
from mlcycle.data.loaders import split_loader
from mlcycle.data.manifest import check_unchanged, file_digest, write_run_files
from mlcycle.data.splits import SPLITS
from mlcycle.tables.pipeline import CUSTOM_STEPS, learned_params, resolve_config
from mlcycle.tables.read import FILE_SOURCES, source_of
from mlcycle.tables.schema import Schema
from mlcycle.tables.table import PIPELINE_FILE, SCHEMA_FILE, Table, build_table, where

__all__ = ["PIPELINE_FILE", "SCHEMA_FILE", "RowsDataset", "Table", "TabularData"]


class RowsDataset(Dataset):
    """``(x, y, index)`` items of a feature matrix."""

    def __init__(self, x: np.ndarray, y: np.ndarray, index: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(y))
        self.index = torch.from_numpy(np.asarray(index, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i], self.index[i]


class TabularData(LightningDataModule):
    """A table for classification or regression.

    Args:
        source: ``csv``, ``parquet``, ``sql`` or ``builtin`` (or a plugin's table source);
            unset: ``data.path``'s suffix picks it (``.csv``, ``.parquet``, ``.pq``), or ``sql``
            when ``data.url`` is set.
        path: the CSV or Parquet file; the built-in table's name (``breast_cancer``, ``wine``,
            ``diabetes``, ``messy``).
        url: SQLAlchemy URL of the database (``sql``), opened read-only.
        query: the SELECT whose rows are the table (``sql``).
        delimiter: the CSV delimiter (``;``, ``tab``, ...); unset: sniffed from the first lines.
        encoding: the CSV encoding (``utf-8``, ``cp1252``, ``latin-1``, ...); unset: UTF-8 (a
            BOM allowed), else cp1252, else latin-1, the first that decodes the whole file.
        target: the label column.
        task: ``auto`` (text, boolean and integer targets with at most 20 values are
            classification, other numbers regression), ``classification`` or ``regression``.
        drop: columns that are not features (besides identifiers and constants, dropped anyway).
        kinds: ``{column: kind}`` overriding the inferred kinds (numeric, categorical, boolean,
            datetime, text, identifier, constant).
        group_column: rows sharing its value stay in one split (a customer, a patient).
        time_column: split by time: train on the oldest rows, validate on the next, test on
            the most recent.
        id_column: a row's id: not a feature; keys ``splits.csv`` and the worst-rows tables.
        pipeline: cleaning and feature engineering (see docs/tables.md); fitted on train only.
        val_fraction: share of the rows held for validation (of each class, drawn).
        test_fraction: share held out as the sealed test split (0: none).
        split_seed: seed of the split; a row's split depends only on it and the row's content.
        split_file: a run's ``splits.csv``: reuses that run's split (and its ``schema.json``).
        batch_size: rows per batch.
        num_workers: DataLoader worker processes (``auto``: as for images).
        allow_changed: resume a run even though its table changed since it started.
        relabel: a CSV of ``row,label`` (or ``<id_column>,label``) lines (``mlcycle
            label-issues``) whose targets replace the table's, for this run only.
    """

    data_kind = "tabular"  # the name the stages' registries know tables by (data/base.py)

    def __init__(
        self,
        source: str | None = None,
        path: str | None = None,
        url: str | None = None,
        query: str | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        target: str | None = None,
        task: Literal["auto", "classification", "regression"] = "auto",
        drop: list[str] | None = None,
        kinds: dict[str, str] | None = None,
        group_column: str | None = None,
        time_column: str | None = None,
        id_column: str | None = None,
        pipeline: dict[str, Any] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | None = None,
        batch_size: int = 64,
        num_workers: int | Literal["auto"] = 0,
        allow_changed: bool = False,
        relabel: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.hparams.source = source_of(source, path, url)  # what every later step reads
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be at least 1")
        if num_workers != "auto" and (isinstance(num_workers, bool) or int(num_workers) < 0):
            raise UserError(f"data.num_workers={num_workers} must be 0 or more, or 'auto'")
        if group_column and time_column:
            raise UserError(
                "data.group_column and data.time_column both set; a split is either by group or "
                "by time: unset one"
            )
        self.pipeline_config = resolve_config(pipeline)  # bad keys fail before the table is read
        self._table: Table | None = None

    # --- what the model and the run record need ------------------------------------------------

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = build_table(self.hparams, self.pipeline_config)
        return self._table

    @property
    def run_name(self) -> str | None:
        """The default run directory's name (data/base.py's hook): a file's stem, so a run on
        ``churn.csv`` goes to ``runs/churn/<time>``; None (the config's name) for other sources."""
        hp = self.hparams
        return Path(hp.path).stem if hp.path and hp.source in FILE_SOURCES.values() else None

    def setup(self, stage: str | None = None) -> None:
        self.table  # noqa: B018 - reads, splits and fits once

    @property
    def schema(self) -> Schema:
        return self.table.schema

    @property
    def task_kind(self) -> str:
        return self.schema.task

    @property
    def class_names(self) -> list[str]:
        return list(self.schema.classes)

    @property
    def num_classes(self) -> int:
        return len(self.schema.classes) if self.task_kind == "classification" else 1

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline fitted on the train rows."""
        return self.table.pipeline

    @property
    def feature_names(self) -> list[str]:
        return list(self.table.features["names"])

    @property
    def num_features(self) -> int:
        return len(self.table.features["names"])

    @property
    def num_numeric(self) -> int:
        return int(self.table.features["num_numeric"])

    @property
    def cardinalities(self) -> list[int]:
        return list(self.table.features["cardinalities"])

    @property
    def steps(self) -> list[dict[str, str]]:
        """Every cleaning decision with its reason, in order."""
        return list(self.table.features["steps"])

    @property
    def class_counts(self) -> list[int] | None:
        """Train rows per class (classification)."""
        if self.task_kind != "classification":
            return None
        y = self.arrays("train")[1]
        return np.bincount(y, minlength=self.num_classes).tolist()

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")

    def split_positions(self, split: str) -> list[int]:
        """The positions (in the table of usable rows) of a split's rows, in loader order."""
        self._check_split(split)
        return self.table.positions[split].tolist()

    def frame(self, split: str) -> pd.DataFrame:
        """The raw rows of a split as read (target included), indexed by position."""
        self._check_split(split)
        table = self.table
        return table.frame.iloc[table.positions[split]]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X float32 [N, num_features], y)`` of a split; the train rows' target encoding is
        cross-fitted, exactly as training saw it."""
        self._check_split(split)
        table = self.table
        if split not in table.matrices:
            rows = table.frame.iloc[table.positions[split]].reset_index(drop=True)
            table.matrices[split] = self._features(rows)
        return table.matrices[split], table.y[table.positions[split]]

    def _features(self, rows: pd.DataFrame) -> np.ndarray:
        """Rows as read, transformed by the fitted pipeline (float32 ``[N, num_features]``)."""
        if not len(rows):
            return np.zeros((0, self.num_features), dtype=np.float32)
        return np.asarray(self.table.pipeline.transform(rows), dtype=np.float32)

    # --- loaders -------------------------------------------------------------------------------

    @property
    def num_workers(self) -> int:
        from mlcycle.core.device import available_cores, resolve_num_workers

        hp = self.hparams
        return resolve_num_workers(hp.num_workers, hp.batch_size, available_cores())

    def dataset(self, split: str) -> RowsDataset:
        x, y = self.arrays(split)
        return RowsDataset(x, y, self.table.positions[split])

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        return split_loader(dataset, split, self.hparams.batch_size, self.num_workers, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def split_dataloader(self, split: str) -> DataLoader:
        """Any split, in order; used by evaluation, never by training."""
        return self._loader(split, shuffle=False)

    # --- the run record --------------------------------------------------------------------------

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        """``(key, sha256 of the whole row, 0, label, split, source)`` of every row used."""
        table, source = self.table, self.hparams.source
        split_of = {}
        for split, positions in table.positions.items():
            for p in positions:
                split_of[int(p)] = split
        return [
            (table.keys[p], table.contents[p], 0, table.labels[p], split, source)
            for p, split in sorted(split_of.items())
        ]

    @property
    def fingerprint(self) -> str:
        """sha256 over every used row's content hash, label and split (row order ignored)."""
        digest = hashlib.sha256()
        for line in sorted(
            f"{sha},{label},{split}" for _, sha, _, label, split, _ in self.manifest_rows()
        ):
            digest.update(f"{line}\n".encode())
        return digest.hexdigest()

    def check_unchanged_since(self, run_dir: Path) -> None:
        """Stop a resume whose table changed since the run started, unless allowed."""
        check_unchanged(Path(run_dir), self.manifest_rows(), self.hparams.allow_changed)

    def describe(self) -> dict[str, Any]:
        """What a later step (evaluate, export, predict) needs to rebuild the input."""
        hp, table = self.hparams, self.table
        file_info = {}
        if hp.source in ("csv", "parquet") and hp.path and Path(hp.path).is_file():
            sha, size = file_digest(Path(hp.path))
            file_info = {"file_sha256": sha, "file_bytes": size}
        return {
            "kind": "table",
            "source": hp.source,
            "where": where(self.hparams),
            **file_info,
            "target": table.schema.target,
            "task": table.schema.task,
            "class_names": self.class_names,
            "num_classes": self.num_classes,
            "input_columns": {c.name: c.kind for c in table.schema.features},
            "feature_names": self.feature_names,
            "num_features": self.num_features,
            "num_numeric": self.num_numeric,
            "cardinalities": self.cardinalities,
            "split": table.how,
            "rows_read": table.read_rows,
            "split_counts": {s: len(p) for s, p in table.positions.items()},
            "skipped_rows": len(table.skipped),
            **({"relabel": hp.relabel, "relabelled": table.relabelled} if hp.relabel else {}),
            "fingerprint": self.fingerprint,
            "schema_file": SCHEMA_FILE,
            "pipeline_file": PIPELINE_FILE,
        }

    def pipeline_record(self) -> dict[str, Any]:
        """``pipeline.json``: the resolved config, the input columns, the output, every step's
        reason, the custom steps (for export) and what each step learned."""
        table = self.table
        return {
            "config": self.pipeline_config,
            "input_columns": {c.name: c.kind for c in table.schema.features},
            "output": {k: v for k, v in table.features.items() if k != "steps"},
            "steps": table.features["steps"],
            "custom_steps": list(CUSTOM_STEPS),
            "learned": json.loads(json.dumps(learned_params(table.pipeline))),
        }

    def write_records(self, run_dir: Path) -> None:
        """``data_manifest.csv``, ``splits.csv`` (``path`` = the row key, ``label``, ``split``,
        ``row``), ``skipped_files.csv`` (the rows not used), ``data.json``, ``schema.json`` and
        ``pipeline.json``."""
        run_dir = Path(run_dir)
        table = self.table
        manifest = self.manifest_rows()
        split_rows = [
            (table.keys[p], table.labels[p], split, table.rows[p])
            for split in SPLITS
            for p in table.positions[split]
        ]
        write_run_files(
            run_dir,
            manifest,
            ("path", "label", "split", "row"),
            split_rows,
            table.skipped,
            self.describe(),
        )
        (run_dir / SCHEMA_FILE).write_text(json.dumps(table.schema.to_dict(), indent=2) + "\n")
        (run_dir / PIPELINE_FILE).write_text(json.dumps(self.pipeline_record(), indent=2) + "\n")
