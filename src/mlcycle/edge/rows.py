"""CSV rows read as training read them, for a table model's one ONNX graph.

The graph holds the fitted pipeline and the model; what runs here is the pre-step ONNX has no
operators for (``model.json``'s ``input.columns`` and ``input.onnx_inputs``): each value read
as its column's kind (as ``mlcycle.tables.steps.Coerce`` does) and dates split into their
parts. Export reads its validation rows through these functions too, so what it verifies is
what a device computes.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .csv_format import ENCODINGS, SAMPLE_BYTES, csv_format, sniff_delimiter
from .model import UsageError

NA_TEXT = frozenset(  # what pandas.read_csv reads as missing by default
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
TRUE_TEXT = frozenset({"true", "yes", "y", "t", "1", "1.0", "on"})
FALSE_TEXT = frozenset({"false", "no", "n", "f", "0", "0.0", "off"})
DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d", "%Y/%m/%d %H:%M",
                "%Y/%m/%d %H:%M:%S", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%Y%m%d")  # fmt: skip


def number_text(value: float) -> str:
    """A number as a category is named by it (``3.0`` -> ``"3"``)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def parse_date(text: str) -> datetime | None:
    """``text`` as a naive UTC datetime (ISO 8601 and a few common forms), or None."""
    value = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        for form in DATE_FORMATS:
            try:
                value = datetime.strptime(text, form)
                break
            except ValueError:
                continue
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _boolean(text: str) -> tuple[Any, str | None]:
    try:
        word = number_text(float(text))
    except ValueError:
        word = text.lower()
    if word in TRUE_TEXT or word in FALSE_TEXT:
        return (1.0 if word in TRUE_TEXT else 0.0), None
    return None, "not true/false"


def read_cell(text: str | None, kind: str) -> tuple[Any, str | None]:
    """One CSV value as its column's kind: (value, None), or (None, why it cannot be read).
    Missing values are missing (NaN, ``""`` for categories), not errors."""
    text = (text or "").strip()
    if text in NA_TEXT:
        return ("" if kind in ("categorical", "text") else None), None
    if kind == "numeric":
        try:
            return float(text), None
        except ValueError:
            return None, "not a number"
    if kind == "boolean":
        return _boolean(text)
    if kind == "datetime":
        value = parse_date(text)
        return (value, None) if value is not None else (None, "not a date")
    try:  # categories written as numbers read as pandas reads a numeric column
        return number_text(float(text)), None
    except (ValueError, OverflowError):
        return text, None


def date_part(value: Any, part: str) -> float:
    if value is None:
        return float("nan")
    if part == "quarter":
        return float((value.month - 1) // 3 + 1)
    if part == "dayofyear":
        return float(value.timetuple().tm_yday)
    if part == "weekday":
        return float(value.weekday())
    return float(getattr(value, part))


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV file, its delimiter and encoding detected as
    training detects them (:func:`.csv_format.csv_format`: ``;`` or tab, cp1252 or latin-1)."""
    try:
        delimiter, encoding = csv_format(path)
        with path.open(newline="", encoding=encoding) as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
    except FileNotFoundError as exc:
        raise UsageError(f"CSV file '{path}' does not exist") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"CSV file '{path}' cannot be read: {exc}") from exc
    if not rows:
        raise UsageError(f"CSV file '{path}' is empty; it needs a header row")
    return [h.strip() for h in rows[0]], rows[1:]


def text_rows(data: bytes, name: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of CSV ``data`` (an upload), read as :func:`read_rows`
    reads a file: the first encoding of :data:`.csv_format.ENCODINGS` that decodes every byte,
    the delimiter sniffed from the first lines."""
    encoding = next(e for e in ENCODINGS if e == ENCODINGS[-1] or _decodes(data, e))
    text = data.decode(encoding)
    try:
        rows = list(
            csv.reader(
                io.StringIO(text, newline=""), delimiter=sniff_delimiter(text[:SAMPLE_BYTES])
            )
        )
    except csv.Error as exc:
        raise UsageError(f"CSV file '{name}' cannot be read: {exc}") from exc
    if not rows:
        raise UsageError(f"CSV file '{name}' is empty; it needs a header row")
    return [h.strip() for h in rows[0]], rows[1:]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _feed(item: dict[str, Any], values: dict[str, list[Any]]) -> np.ndarray:
    """One graph input (a column, or a part of a date column) as an (n, 1) array."""
    if "date" in item:
        parts = [date_part(v, item["part"]) for v in values[item["date"]]]
        array = np.asarray(parts, dtype=np.float64)
        if item.get("fn") in ("sin", "cos"):
            angle = 2 * np.pi * (array - item["start"]) / item["period"]
            array = np.sin(angle) if item["fn"] == "sin" else np.cos(angle)
    elif item["type"] == "string":
        array = np.asarray(values[item["column"]], dtype=object)
    else:
        column = values[item["column"]]
        array = np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
    dtype = object if item["type"] == "string" else np.float64
    return array.astype(dtype).reshape(-1, 1)


Cells = dict[str, "str | None"]  # a row's text by column name; a column not given is missing


def shown_text(text: str | None) -> str:
    shown = (text or "").strip()
    return shown if len(shown) <= 30 else shown[:27] + "..."


def read_row(cells: Cells, columns: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """One row's feature values read as their columns' kinds, or why the row cannot be scored
    (its first value of the wrong type, naming the column and the value)."""
    read: dict[str, Any] = {}
    for column in columns:
        text = cells.get(column["name"])
        value, problem = read_cell(text, column["kind"])
        if problem is not None:
            return read, (
                f"column '{column['name']}': '{shown_text(text)}' is {problem} "
                f"({column['kind']} column)"
            )
        read[column["name"]] = value
    return read, None


def header_cells(
    header: list[str], rows: list[list[str]], spec: dict[str, Any], source: str
) -> list[Cells]:
    """CSV rows as cells by column name; a feature column missing from the header stops
    everything (a ``UsageError`` naming it)."""
    for column in spec["columns"]:
        if column["name"] not in header:
            raise UsageError(
                f"{source} has no column '{column['name']}' ({column['kind']}), which the model "
                f"needs; its columns: {', '.join(header) or 'none'}"
            )
    where = {name: i for i, name in enumerate(header)}
    return [{n: row[i] if i < len(row) else None for n, i in where.items()} for row in rows]


def read_table(
    header: list[str], rows: list[list[str]], spec: dict[str, Any], source: str = "the CSV file"
) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """The feature values of the rows that read, their positions, and why each other row
    cannot be scored."""
    reads: list[dict[str, Any]] = []
    kept: list[int] = []
    problems: dict[int, str] = {}
    for position, cells in enumerate(header_cells(header, rows, spec, source)):
        read, problem = read_row(cells, spec["columns"])
        if problem is not None:
            problems[position] = problem
            continue
        kept.append(position)
        reads.append(read)
    return reads, kept, problems


def feeds_for(reads: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The graph's inputs for rows read by ``read_row``, in their order."""
    values = {c["name"]: [read[c["name"]] for read in reads] for c in spec["columns"]}
    return {item["name"]: _feed(item, values) for item in spec["onnx_inputs"]}


def table_inputs(
    header: list[str], rows: list[list[str]], spec: dict[str, Any], source: str = "the CSV file"
) -> tuple[dict[str, np.ndarray], list[int], dict[int, str]]:
    """The graph's inputs for the rows that can be scored, their positions, and why each other
    row cannot be scored (its first value of the wrong type). A feature column missing from the
    header stops everything (a ``UsageError`` naming it)."""
    reads, kept, problems = read_table(header, rows, spec, source)
    return feeds_for(reads, spec), kept, problems
