"""Which table the quality tools read, and reading it: ``--table PATH --target COLUMN`` (with
``--source``, ``--url``, ``--query``, ``--task``, ``--drop``) or a config whose data module is a
``TabularData`` (its ``data`` section names the same things)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlcycle.core.errors import UserError

SOURCES = ("csv", "parquet", "sql", "builtin")
TASKS = ("auto", "classification", "regression")
PARQUET = (".parquet", ".pq")


@dataclass(frozen=True)
class TableSpec:
    """How to read a table and which column is the target: what a notebook records to read it
    again."""

    source: str
    target: str
    path: str | None = None
    url: str | None = None
    query: str | None = None
    task: str = "auto"
    drop: tuple[str, ...] = ()
    kinds: dict[str, str] | None = None
    from_config: bool = False  # named by a config's data section (data.target) or by --target

    @property
    def target_key(self) -> str:
        return "data.target" if self.from_config else "--target"

    @property
    def where(self) -> str:
        """The table as the user named it (a database URL without its password)."""
        if self.source == "sql":
            from mlcycle.data.sql import shown_url

            return shown_url(self.url or "")
        return f"builtin:{self.path}" if self.source == "builtin" else str(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop": list(self.drop)}


@dataclass
class Table:
    """A table read, typed, and (when the data module can tell) each row's split."""

    spec: TableSpec
    frame: pd.DataFrame
    schema: Any  # mlcycle.tables.schema.Schema
    configs: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    splits: list[str | None] | None = None  # one per row of frame; None: no split known

    @property
    def target(self) -> str:
        return self.schema.target

    @property
    def task(self) -> str:
        return self.schema.task


def add_arguments(parser: Any) -> None:
    """The options that name a table instead of a config (scripts/validate_data.py, eda.py)."""
    parser.add_argument("--table", type=str | None, default=None, help="a table to read instead of a config: a CSV or Parquet file, or a builtin name with --source builtin")  # fmt: skip
    parser.add_argument("--source", type=str | None, default=None, help=f"how to read --table: {', '.join(SOURCES)} (default: by its extension)")  # fmt: skip
    parser.add_argument("--url", type=str | None, default=None, help="--source sql: the SQLAlchemy URL")  # fmt: skip
    parser.add_argument("--query", type=str | None, default=None, help="--source sql: the query")  # fmt: skip
    parser.add_argument("--target", type=str | None, default=None, help="the table's label column")  # fmt: skip
    parser.add_argument("--task", type=str, default="auto", help="auto, classification or regression (default: inferred from the target)")  # fmt: skip
    parser.add_argument("--drop", type=str | None, default=None, help="columns to leave out, comma-separated")  # fmt: skip


def wanted(args: Any) -> bool:
    """Whether the command line names a table (``--table`` or ``--source``); the other table
    options without one are refused (a config names them in its data section)."""
    if args.get("table") is not None or args.get("source") is not None:
        return True
    given = [k for k in ("target", "url", "query", "drop") if args.get(k) is not None]
    if args.get("task", "auto") != "auto":
        given.append("task")
    if given:
        raise UserError(
            f"--{given[0]} goes with --table (or --source); with a config set --data.{given[0]}"
        )
    return False


def spec_from_arguments(args: Any) -> TableSpec:
    """The table of ``--table``/``--source``; a bad combination is one line."""
    if args.get("config"):
        raise UserError(
            "give either --config or --table, not both (a config names its table in its data section)"
        )
    source = args.source or (
        "parquet" if Path(args.table or "").suffix.lower() in PARQUET else "csv"
    )
    if source not in SOURCES:
        raise UserError(f"--source {source!r} is not one of {', '.join(SOURCES)}")
    if source == "sql":
        if not args.url or not args.query:
            raise UserError("--source sql needs --url URL and --query 'SELECT ...'")
    elif not args.table:
        raise UserError(f"--source {source} needs --table (a file, or a builtin table's name)")
    if source in ("csv", "parquet") and not Path(args.table).is_file():
        raise UserError(
            f"--table '{args.table}' is not a file; give the path of a CSV or Parquet table"
        )
    if not args.target:
        raise UserError("--table needs --target COLUMN: the column to predict")
    if args.task not in TASKS:
        raise UserError(f"--task {args.task!r} is not one of {', '.join(TASKS)}")
    drop = tuple(c.strip() for c in (args.drop or "").split(",") if c.strip())
    return TableSpec(
        source,
        args.target,
        path=args.table,
        url=args.url,
        query=args.query,
        task=args.task,
        drop=drop,
    )


def is_table_module(dm: Any) -> bool:
    """Whether a data module reads a table (``TabularData`` or a subclass)."""
    return any(c.__name__ == "TabularData" for c in type(dm).__mro__)


def spec_from_module(dm: Any) -> TableSpec:
    """The table a ``TabularData`` reads, from its init arguments."""
    hp = dm.hparams
    if not hp.get("target"):
        raise UserError(
            "data.target is not set; name the column to predict in the config's data section"
        )
    return TableSpec(
        str(hp.get("source", "csv")),
        str(hp["target"]),
        path=None if hp.get("path") is None else str(hp["path"]),
        url=hp.get("url"),
        query=hp.get("query"),
        task=str(hp.get("task") or "auto"),
        drop=tuple(hp.get("drop") or ()),
        kinds=dict(hp["kinds"]) if hp.get("kinds") else None,
        from_config=True,
    )


def read(spec: TableSpec) -> tuple[pd.DataFrame, Any]:
    """The table and its schema, as training reads and types them; an empty table or a target
    that is not one of its columns is one line."""
    from mlcycle.tables.read import read_table
    from mlcycle.tables.schema import infer_schema

    frame = read_table(spec.source, path=spec.path, url=spec.url, query=spec.query)
    where = spec.where
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise UserError(f"the table '{where}' has no rows; check the file or the query")
    if spec.target not in frame.columns:
        names = [str(c) for c in frame.columns]
        close = difflib.get_close_matches(spec.target, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UserError(
            f"{spec.target_key} '{spec.target}' is not a column of '{where}'; {hint}its columns: {shown}"
        )
    if frame[spec.target].isna().all():
        raise UserError(f"{spec.target_key} '{spec.target}' of '{where}' has no values")
    missing = [c for c in spec.drop if c not in frame.columns]
    if missing:
        key = "data.drop" if spec.from_config else "--drop"
        raise UserError(f"{key} names '{missing[0]}', which is not a column of '{where}'")
    schema = infer_schema(frame, spec.target, task=spec.task, drop=spec.drop, kinds=spec.kinds)
    return frame, schema


def module_splits(dm: Any, frame: pd.DataFrame) -> list[str | None] | None:
    """Each row's split as the data module draws it (None for a row it leaves out, such as one
    without a target); None when it cannot tell. Building it fits its pipeline, as training does."""
    table = dm.table  # TabularData: reads, splits and fits once
    rows, splits = getattr(table, "rows", None), getattr(table, "splits", None)
    if rows is None or splits is None or len(rows) != len(splits):
        return None
    out: list[str | None] = [None] * len(frame)
    for row, split in zip(rows, splits, strict=True):
        if 1 <= row <= len(frame):
            out[row - 1] = split  # rows are numbered from 1 as read
    return out


def from_module(dm: Any, configs: Sequence[str] = (), overrides: Sequence[str] = ()) -> Table:
    """The table a ``TabularData`` reads, with each row's split when it can tell."""
    spec = spec_from_module(dm)
    frame, schema = read(spec)
    splits = module_splits(dm, frame)
    return Table(spec, frame, schema, [str(c) for c in configs], list(overrides), splits)


def load(
    spec: TableSpec | None = None,
    configs: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> Table:
    """The table of ``spec``, or of the data module of ``configs`` and ``overrides``."""
    if spec is not None:
        frame, schema = read(spec)
        return Table(spec, frame, schema)
    from mlcycle.quality.config import build_data

    dm = build_data(configs, list(overrides))
    if not is_table_module(dm):
        raise UserError(f"the data module of {', '.join(configs)} does not read a table")
    return from_module(dm, configs, overrides)
