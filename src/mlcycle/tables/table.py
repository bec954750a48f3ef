"""A table read, typed, split and fitted for :class:`~mlcycle.tables.data.TabularData`.

:func:`build_table` reads the table (:func:`~mlcycle.tables.read.read_table`), infers its
schema (or, for a run's own data, reads its ``schema.json`` and holds the table to it), skips
the rows without a usable target or time with the reason, hashes each row, splits the rows
(drawn, by group or by time: :mod:`mlcycle.tables.splits`, or a run's ``splits.csv``) and fits
the pipeline on the train rows only (:mod:`mlcycle.tables.pipeline`). ``hp`` is the data
module's hyperparameters (its ``__init__`` arguments).
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlcycle.core.errors import UserError
from mlcycle.data.layout import announce
from mlcycle.data.splits import SPLITS, splits_from_file
from mlcycle.tables.pipeline import (
    compare_params,
    describe_features,
    fit_pipeline,
    learned_params,
)
from mlcycle.tables.read import read_table
from mlcycle.tables.relabel import relabel_frame
from mlcycle.tables.schema import Schema, check_frame, check_target, infer_schema
from mlcycle.tables.splits import drawn_split, group_split, row_hashes, time_split
from mlcycle.tables.values import label_texts, read_as

SCHEMA_FILE = "schema.json"
PIPELINE_FILE = "pipeline.json"


@dataclass
class Table:
    """Everything known about the table once read, split and fitted."""

    frame: pd.DataFrame  # the usable rows as read (target included), index 0..n-1
    rows: list[int]  # each usable row's number in the table as read (1-based)
    hashes: list[str]  # content sha256 of each row without its target: what its split follows
    contents: list[str]  # content sha256 of each whole row (target included): the manifest's
    keys: list[str]  # splits.csv's key of each row: data.id_column's value or the hash
    labels: list[str]  # the target as text
    y: np.ndarray  # class indices (int64) or values (float32)
    splits: list[str]
    positions: dict[str, np.ndarray]
    schema: Schema
    pipeline: Pipeline
    features: dict[str, Any]  # describe_features(pipeline)
    skipped: list[tuple[str, str]]
    read_rows: int
    how: str  # how the splits were made, for the layout line
    relabelled: int = 0  # targets data.relabel changed
    matrices: dict[str, np.ndarray] = field(default_factory=dict)


def where(hp: Any) -> str:
    """The table's source in words."""
    if hp.source == "sql":
        from mlcycle.data.sql import shown_url

        return f"SQL query on {shown_url(hp.url or '')}"
    return f"{hp.source} table '{hp.path}'"


def run_file(hp: Any, name: str) -> Path | None:
    """A file of the run whose ``splits.csv`` is ``data.split_file``."""
    if not hp.split_file:
        return None
    path = Path(hp.split_file).parent / name
    return path if path.is_file() else None


def build_table(hp: Any, pipeline_config: dict[str, Any]) -> Table:
    """The table of a data module's ``hp``, read, split and with its pipeline fitted;
    ``pipeline_config``: the resolved ``data.pipeline``."""
    frame = read_table(
        hp.source, hp.path, hp.url, hp.query, hp.get("delimiter"), hp.get("encoding")
    )
    read_rows = len(frame)
    if hp.id_column:
        _column(frame, hp, "id_column")
    if hp.group_column:
        _column(frame, hp, "group_column")
    schema = _schema(frame, hp)
    relabelled = 0
    if hp.get("relabel"):  # data.relabel: the targets of a copy; the whole-row hashes follow
        frame, relabelled = relabel_frame(frame, schema, hp)
    frame, rows, y, labels, times, skipped = _usable_rows(frame, schema, hp)
    # A row's split follows its features, so relabelling a row never moves it between
    # splits; the manifest hashes the whole row, so a relabelling still counts as a change.
    hashes = row_hashes(frame.drop(columns=[schema.target]))
    contents = row_hashes(frame)
    keys = _ids(frame, hp) if hp.id_column else hashes
    splits, how = _splits(hp, frame, schema, hashes, keys, labels, times)
    positions = {
        s: np.asarray([i for i, x in enumerate(splits) if x == s], dtype=np.int64) for s in SPLITS
    }
    if not len(positions["train"]):
        raise UserError("the train split is empty; lower data.val_fraction / data.test_fraction")
    _warn_missing_classes(schema, y, positions)
    train = positions["train"]
    pipeline, x_train, kept = fit_pipeline(
        schema, pipeline_config, frame.iloc[train].reset_index(drop=True), y[train]
    )
    for p in train[~kept]:
        skipped.append(
            (f"row {rows[p]}", "too many features missing (pipeline.missing.drop_rows_over)")
        )
    positions["train"] = train[kept]
    table = Table(
        frame=frame,
        rows=rows,
        hashes=hashes,
        contents=contents,
        keys=keys,
        labels=labels,
        y=y,
        splits=splits,
        positions=positions,
        schema=schema,
        pipeline=pipeline,
        features=describe_features(pipeline),
        skipped=skipped,
        read_rows=read_rows,
        how=how,
        relabelled=relabelled,
        matrices={"train": x_train},
    )
    _announce(hp, table)
    _check_saved_pipeline(hp, pipeline)
    return table


def _announce(hp: Any, table: Table) -> None:
    counts = ", ".join(f"{s} {len(table.positions[s])}" for s in SPLITS)
    schema, skipped = table.schema, table.skipped
    announce(
        f"{where(hp)}: {table.read_rows} rows, {len(schema.columns)} columns; target "
        f"'{schema.target}' ({schema.task}); {table.how} ({counts}); "
        f"{len(table.features['names'])} features after the pipeline"
    )
    if skipped:
        print(
            f"skipped {len(skipped)} row(s) ({skipped[0][0]}: {skipped[0][1]}); the run's "
            "skipped_files.csv lists them"
        )


def _schema(frame: pd.DataFrame, hp: Any) -> Schema:
    saved = run_file(hp, SCHEMA_FILE)
    if saved is not None:
        schema = Schema.from_dict(json.loads(saved.read_text()))
        check_target(frame, schema.target)
        check_frame(frame, schema)
        return schema
    drop = list(hp.drop or [])
    if hp.id_column and hp.id_column not in drop:
        drop.append(hp.id_column)
    schema = infer_schema(frame, hp.target, hp.task, drop, hp.kinds)
    if hp.id_column:
        schema.column(hp.id_column).dropped = "the id column (data.id_column)"
    return schema


def _usable_rows(
    frame: pd.DataFrame, schema: Schema, hp: Any
) -> tuple[pd.DataFrame, list[int], np.ndarray, list[str], pd.Series | None, list[tuple[str, str]]]:
    """The rows with a usable target (and time): the rows, their numbers in the table as read,
    their targets as the model sees them and as text, their times; and the rows skipped."""
    y, labels, bad = _labels(frame, schema)
    times = None
    if hp.time_column:
        times, late = _times(frame, schema, hp)
        bad = {**late, **bad}
    skipped = [(f"row {i + 1}", why) for i, why in sorted(bad.items())]
    keep = np.asarray([i not in bad for i in range(len(frame))])
    if not keep.any():
        raise UserError(f"no row of the {where(hp)} can be used ({skipped[0][1]})")
    rows = [i + 1 for i in range(len(frame)) if keep[i]]
    labels = [t for t, k in zip(labels, keep, strict=True) if k]
    if times is not None:
        times = times[keep].reset_index(drop=True)
    return frame[keep].reset_index(drop=True), rows, y[keep], labels, times, skipped


def _labels(frame: pd.DataFrame, schema: Schema) -> tuple[np.ndarray, list[str], dict[int, str]]:
    """The target of every row as the model sees it, as text, and the rows it cannot use."""
    target = frame[schema.target]
    text = label_texts(target)
    bad: dict[int, str] = {}
    if schema.task == "classification":
        index = {c: i for i, c in enumerate(schema.classes)}
        y = np.zeros(len(frame), dtype=np.int64)
        for i, label in enumerate(text):
            if pd.isna(label):
                bad[i] = "the target is missing"
            elif label not in index:
                bad[i] = f"class '{label}' is not one of the run's classes"
            else:
                y[i] = index[label]
    else:
        values, wrong = read_as(target, "numeric")
        y = values.to_numpy(dtype=np.float32)
        for i in np.flatnonzero(values.isna().to_numpy()):
            shown = target.iloc[i]
            bad[int(i)] = (
                f"the target '{shown}' is not a number"
                if wrong.iloc[i]
                else "the target is missing"
            )
    return y, ["" if pd.isna(t) else str(t) for t in text], bad


def _column(frame: pd.DataFrame, hp: Any, key: str) -> str:
    name = getattr(hp, key)
    if name not in frame.columns:
        close = difflib.get_close_matches(str(name), [str(c) for c in frame.columns], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(
            f"data.{key} '{name}' is not a column of the table; {hint}columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    return name


def _ids(frame: pd.DataFrame, hp: Any) -> list[str]:
    """``data.id_column``'s values as text; each row needs its own."""
    ids = label_texts(frame[hp.id_column])
    counts = ids.value_counts(dropna=False)
    if ids.isna().any() or counts.max() > 1:
        twice = (
            "a missing id" if ids.isna().any() else f"'{counts.index[0]}' {counts.iloc[0]} times"
        )
        raise UserError(
            f"data.id_column '{hp.id_column}' has {twice}; it must identify each "
            "row (unset it to key rows by their content)"
        )
    return [str(v) for v in ids]


def _times(frame: pd.DataFrame, schema: Schema, hp: Any) -> tuple[pd.Series, dict[int, str]]:
    name = _column(frame, hp, "time_column")
    kind = schema.column(name).kind
    if kind not in ("datetime", "numeric"):
        raise UserError(f"data.time_column '{name}' holds {kind} values; it needs dates or numbers")
    values, _ = read_as(frame[name], kind)
    bad = {
        int(i): f"no readable time in '{name}'" for i in np.flatnonzero(values.isna().to_numpy())
    }
    return values, bad


def _splits(
    hp: Any,
    frame: pd.DataFrame,
    schema: Schema,
    hashes: list[str],
    keys: list[str],
    labels: list[str],
    times: pd.Series | None,
) -> tuple[list[str], str]:
    val, test, seed = hp.val_fraction, hp.test_fraction, hp.split_seed
    if hp.split_file:
        return splits_from_file(hp.split_file, keys), f"splits from {hp.split_file}"
    if times is not None:
        return time_split(times, hashes, val, test), f"split by time ('{hp.time_column}')"
    if hp.group_column:
        groups = [
            f"row:{h}" if pd.isna(g) else f"group:{g}"
            for g, h in zip(label_texts(frame[hp.group_column]), hashes, strict=True)
        ]
        return group_split(groups, val, test, seed), f"split by group ('{hp.group_column}')"
    strata = labels if schema.task == "classification" else ["rows"] * len(labels)
    words = f"val {val:.0%}, " + (f"test {test:.0%}" if test > 0 else "no test split")
    return drawn_split(hashes, strata, val, test, seed), f"splits drawn ({words})"


def _warn_missing_classes(schema: Schema, y: np.ndarray, positions: dict[str, np.ndarray]) -> None:
    if schema.task != "classification":
        return
    for split in ("train", "val", "test"):
        present = set(y[positions[split]].tolist())
        if not len(positions[split]):
            continue
        absent = [c for i, c in enumerate(schema.classes) if i not in present]
        if absent:
            print(
                f"warning: class '{absent[0]}' has no row in the {split} split"
                + ("; a model cannot learn it" if split == "train" else ""),
                file=sys.stderr,
            )


def _check_saved_pipeline(hp: Any, pipeline: Pipeline) -> None:
    """Refitted on a run's own train rows, the pipeline must learn what the run recorded."""
    saved = run_file(hp, PIPELINE_FILE)
    if saved is None:
        return
    recorded = json.loads(saved.read_text()).get("learned")
    differ = compare_params(recorded, json.loads(json.dumps(learned_params(pipeline))))
    if differ:
        print(
            f"warning: the pipeline refitted on the run's train rows differs from {saved} "
            f"({len(differ)} value(s), first at {differ[0]}); the table or the library "
            "versions changed since the run",
            file=sys.stderr,
        )
