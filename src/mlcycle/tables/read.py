"""Reading a table: CSV, Parquet, a SQL query, or a built-in table, into a pandas DataFrame.

Every source is one function registered by name in :data:`TABLE_SOURCES`; a plugin adds one
through the ``mlcycle.table_sources`` entry-point group. A file that cannot be read, a missing
path or a failing query is a one-line :class:`~mlcycle.core.errors.UserError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry

TableReader = Callable[..., pd.DataFrame]
# A reader is ``fn(path=..., url=..., query=...) -> DataFrame`` and ignores what it does not use.
TABLE_SOURCES: Registry[TableReader] = Registry(
    "table source", "data.source", "mlcycle.table_sources"
)

# A file's suffix picks its reader when data.source is not given.
FILE_SOURCES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def source_of(source: str | None, path: str | None, url: str | None = None) -> str:
    """``data.source`` when given; else the reader of ``data.path``'s suffix, ``sql`` for a
    ``data.url``, or ``csv`` (whose reader asks for ``data.path``)."""
    if source:
        return source
    if path:
        suffix = Path(path).suffix.lower()
        if suffix not in FILE_SOURCES:
            raise UserError(
                f"data.path '{path}': tables are read from {', '.join(FILE_SOURCES)} files; "
                f"for another file or a built-in table set data.source ({', '.join(TABLE_SOURCES.names())})"
            )
        return FILE_SOURCES[suffix]
    return "sql" if url else "csv"


def read_table(
    source: str, path: str | None = None, url: str | None = None, query: str | None = None
) -> pd.DataFrame:
    """The table of ``source`` (``csv``, ``parquet``, ``sql`` or ``builtin``) as a DataFrame.

    Args:
        source: a registered table source.
        path: the file (``csv``, ``parquet``), or the built-in table's name (``builtin``).
        url: a SQLAlchemy URL (``sql``); SQLite files are opened read-only.
        query: the SELECT to run (``sql``).
    """
    frame = TABLE_SOURCES.get(source)(path=path, url=url, query=query)
    if frame.shape[1] == 0 or len(frame) == 0:
        where = path or query or source
        raise UserError(f"the table '{where}' has no rows or no columns; check data.path")
    frame.columns = [str(c) for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise UserError(f"the table has two columns named '{duplicated[0]}'; rename one")
    return frame


def _file(path: str | None, kind: str) -> Path:
    if not path:
        raise UserError(f"data.path is not set; pass --data.path with the {kind} file to read")
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"table file '{path}' does not exist or is not a file; check data.path")
    return file


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@TABLE_SOURCES.register("csv")
def read_csv(path: str | None = None, **_: object) -> pd.DataFrame:
    """A CSV file with a header row; empty cells and ``NA``/``n/a``/``null`` are missing."""
    file = _file(path, "CSV")
    try:
        return pd.read_csv(file, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"table file '{path}' cannot be read as CSV: {_one_line(exc)}") from exc


@TABLE_SOURCES.register("parquet")
def read_parquet(path: str | None = None, **_: object) -> pd.DataFrame:
    """A Parquet file (read with pyarrow)."""
    file = _file(path, "Parquet")
    try:
        return pd.read_parquet(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; one line for any of them
        raise UserError(f"table file '{path}' cannot be read as Parquet: {_one_line(exc)}") from exc


@TABLE_SOURCES.register("sql")
def read_sql(url: str | None = None, query: str | None = None, **_: object) -> pd.DataFrame:
    """The rows of ``query`` on the database at ``url`` (run read-only, like the image source)."""
    from mlcycle.data.sql import run_query

    if not url:
        raise UserError(
            "data.url is not set; pass --data.url sqlite:///table.db (any SQLAlchemy URL)"
        )
    if not query:
        raise UserError("data.query is not set; pass --data.query 'SELECT * FROM customers'")
    columns, rows = run_query(url, query)
    return pd.DataFrame.from_records(rows, columns=columns)


@TABLE_SOURCES.register("builtin")
def read_builtin(path: str | None = None, **_: object) -> pd.DataFrame:
    """A built-in table by name (``data.path``): see :data:`mlcycle.tables.builtin.BUILTIN_TABLES`."""
    from mlcycle.tables.builtin import BUILTIN_TABLES

    if not path:
        raise UserError(
            f"data.path names the built-in table; one of {', '.join(BUILTIN_TABLES.names())}"
        )
    if path not in BUILTIN_TABLES and Path(path).suffix.lower() in FILE_SOURCES:
        kind = FILE_SOURCES[Path(path).suffix.lower()]
        raise UserError(
            f"data.path '{path}' is a file but data.source is 'builtin' (a config for a built-in "
            f"table?); pass --data.source={kind}, or start from configs/tables/csv_template.yaml"
        )
    return BUILTIN_TABLES.get(path)()
