"""Reading a table: CSV, Parquet, a SQL query, or a built-in table, into a pandas DataFrame.

Every source is one function registered by name in :data:`TABLE_SOURCES`; a plugin adds one
through the ``mlcycle.table_sources`` entry-point group. A file that cannot be read, a missing
path or a failing query is a one-line :class:`~mlcycle.core.errors.UserError`.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.edge.csv_format import csv_format, header_duplicates

TableReader = Callable[..., pd.DataFrame]
# A reader is ``fn(path=..., url=..., query=..., delimiter=..., encoding=...) -> DataFrame`` and
# ignores what it does not use.
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
    source: str,
    path: str | None = None,
    url: str | None = None,
    query: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """The table of ``source`` (``csv``, ``parquet``, ``sql`` or ``builtin``) as a DataFrame.

    Args:
        source: a registered table source.
        path: the file (``csv``, ``parquet``), or the built-in table's name (``builtin``).
        url: a SQLAlchemy URL (``sql``); SQLite files are opened read-only.
        query: the SELECT to run (``sql``).
        delimiter: the CSV delimiter (``csv``); unset: sniffed from the first lines.
        encoding: the CSV encoding (``csv``); unset: UTF-8 (a BOM allowed), else cp1252, else
            latin-1, the first that decodes the whole file.
    """
    reader = TABLE_SOURCES.get(source)
    frame = reader(path=path, url=url, query=query, delimiter=delimiter, encoding=encoding)
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
def read_csv(
    path: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    **_: object,
) -> pd.DataFrame:
    """A CSV file with a header row; empty cells and ``NA``/``n/a``/``null`` are missing. Its
    delimiter and encoding are detected (:func:`mlcycle.edge.csv_format.csv_format`) unless
    given; a header naming a column twice is read as pandas names it (``x``, ``x.1``), with a
    warning."""
    file = _file(path, "CSV")
    delimiter, encoding = _csv_format(file, path, delimiter, encoding)
    try:
        frame = pd.read_csv(file, sep=delimiter, encoding=encoding, low_memory=False)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"table file '{path}' is not {encoding}: {_one_line(exc)}; set data.encoding "
            "(utf-8, cp1252, latin-1, ...)"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise UserError(f"table file '{path}' cannot be read as CSV: {_one_line(exc)}") from exc
    _warn_duplicates(file, path, delimiter, encoding)
    return frame


def _csv_format(
    file: Path, path: str | None, delimiter: str | None, encoding: str | None
) -> tuple[str, str]:
    given = encoding
    try:
        delimiter, encoding = csv_format(file, delimiter, encoding)
    except LookupError as exc:
        raise UserError(f"data.encoding '{encoding}' is not an encoding Python knows") from exc
    except UnicodeDecodeError as exc:
        raise UserError(
            f"table file '{path}' is not {encoding}: {_one_line(exc)}; set data.encoding"
        ) from exc
    except OSError as exc:
        raise UserError(f"table file '{path}' cannot be read: {_one_line(exc)}") from exc
    if not given and encoding != "utf-8-sig":
        print(
            f"note: table file '{path}' is not UTF-8; read as {encoding} "
            "(set data.encoding to choose another)",
            file=sys.stderr,
        )
    return delimiter, encoding


def _warn_duplicates(file: Path, path: str | None, delimiter: str, encoding: str) -> None:
    with file.open(newline="", encoding=encoding, errors="replace") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), [])
    twice = header_duplicates([h.strip() for h in header])
    if twice:
        print(
            f"warning: table file '{path}' names the column '{twice[0]}' more than once"
            f"{f' (and {len(twice) - 1} more)' if len(twice) > 1 else ''}; the second reads "
            f"as '{twice[0]}.1': rename it in the header to choose its name",
            file=sys.stderr,
        )


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
