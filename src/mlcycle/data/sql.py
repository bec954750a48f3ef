"""The ``sql`` source: a SQLAlchemy URL and a query that returns ``path`` and ``label`` columns.

Paths are resolved against ``data.root``; a row whose path leaves it (``..``, an absolute path
elsewhere) is skipped and listed with its row number, and links inside the root are followed. Other columns go to ``Sample.meta`` for EDA; a
``split`` column (train/val/test) fixes each row's split, as in a CSV manifest. The query runs
in a transaction that is rolled back, and SQLite files are opened read-only.
"""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.layout import absolute
from mlcycle.data.sources import (
    SPLITS,
    Found,
    Sample,
    given_split,
    register_source,
    row_problem,
)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # the driver's own message, without SQLAlchemy's footer
    text = str(orig if orig is not None else exc).split("\n(Background on this error")[0]
    return " ".join(text.split()) or type(exc).__name__


def _plain(value: Any) -> Any:
    """Database values as JSON-friendly Python values."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return None  # blobs are not attributes to analyse
    return value


def _engine(url: str) -> tuple[Any, str]:
    """An engine for ``url`` and the URL as it may be printed (no password)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UserError(
            f"data.url '{url}' is not a SQLAlchemy URL; use e.g. sqlite:///labels.db or "
            "postgresql://user@host/db"
        ) from exc
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = parsed.database
        if not database.startswith("file:"):
            if not Path(database).is_file():
                raise UserError(f"data.url '{shown}': database file '{database}' does not exist")
            # Read-only: connecting must never create or change the file.
            parsed = parsed.set(database=Path(database).resolve().as_uri())
            parsed = parsed.update_query_dict({"mode": "ro", "uri": "true"})
    try:
        return create_engine(parsed), shown
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise UserError(
            f"data.url '{shown}': {_one_line(exc)}; install the database driver or fix the URL"
        ) from exc


def shown_url(url: str) -> str:
    """``url`` as it may be printed (no password)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - the query already ran with it; just print less
        return url.split("@")[-1]


def run_query(url: str, query: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``query``; any database failure becomes one UserError line."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine, shown = _engine(url)
    try:
        with engine.connect() as conn:  # closed without commit: changes are rolled back
            result = conn.execute(text(query))
            if not result.returns_rows:
                raise UserError(f"data.query returned no rows on '{shown}'; use a SELECT")
            return list(result.keys()), [tuple(row) for row in result]
    except SQLAlchemyError as exc:
        raise UserError(f"data.query failed on '{shown}': {_one_line(exc)}") from exc
    finally:
        engine.dispose()


@register_source("sql")
def sql_source(
    url: str | None = None,
    query: str | None = None,
    root: str | None = None,
    path_column: str = "path",
    label_column: str = "label",
    **_: Any,
) -> Found:
    """Rows of ``query`` on the database at ``url``; image paths relative to ``root``."""
    if not url:
        raise UserError(
            "data.url is not set; pass --data.url sqlite:///labels.db (any SQLAlchemy URL)"
        )
    if not query:
        raise UserError("data.query is not set; pass --data.query 'SELECT path, label FROM images'")
    if not root:
        raise UserError("data.root is not set; the query's image paths are resolved against it")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"data root '{root}' does not exist or is not a folder")
    base = absolute(base)
    columns, rows = run_query(url, query)
    missing = [c for c in (path_column, label_column) if c not in columns]
    if missing:
        raise UserError(
            f"data.query has no {' or '.join(repr(c) for c in missing)} column "
            f"(columns: {', '.join(columns) or 'none'}); select them, or set data.path_column / "
            "data.label_column"
        )
    at_path, at_label = columns.index(path_column), columns.index(label_column)
    at_split = columns.index("split") if "split" in columns else None
    samples, skipped = [], []
    for number, row in enumerate(rows, start=1):
        text = "" if row[at_path] is None else str(row[at_path]).strip()
        label = "" if row[at_label] is None else str(row[at_label]).strip()
        problem = row_problem(f"row {number}", text, label, base, (path_column, label_column))
        if problem:
            skipped.append((text or f"row {number}", problem))
            continue
        path = Path(text).expanduser()
        split = None if at_split is None else given_split(row[at_split], f"data.query row {number}")
        skip = {at_path, at_label, at_split}
        meta = {
            c: _plain(v) for i, (c, v) in enumerate(zip(columns, row, strict=True)) if i not in skip
        }
        samples.append(
            Sample(path if path.is_absolute() else base / path, label, split, meta or None)
        )
    given = sorted({s.split for s in samples if s.split}, key=SPLITS.index)
    column = f" with a split column ({', '.join(given)})" if given else ""
    return Found(samples, skipped, f"SQL query on {shown_url(url)}{column}")
