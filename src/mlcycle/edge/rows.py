"""CSV rows read as training read them, for a table model's one ONNX graph.

The graph holds the fitted pipeline and the model; what runs here is the pre-step ONNX has no
operators for (``model.json``'s ``input.columns`` and ``input.onnx_inputs``): each value read
as its column's kind (as ``mlcycle.tables.steps.Coerce`` does) and dates split into their
parts. Export reads its validation rows through these functions too, so what it verifies is
what a device computes.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .csv_format import csv_format
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


def _read_values(
    where: dict[str, int], rows: list[list[str]], columns: list[dict[str, Any]]
) -> tuple[dict[str, list[Any]], list[int], dict[int, str]]:
    """Each feature column's values over the rows that read, those rows' positions, and why
    each other row does not (its first value of the wrong type)."""
    values: dict[str, list[Any]] = {c["name"]: [] for c in columns}
    kept: list[int] = []
    problems: dict[int, str] = {}
    for position, row in enumerate(rows):
        read = {}
        for column in columns:
            i = where[column["name"]]
            value, problem = read_cell(row[i] if i < len(row) else None, column["kind"])
            if problem is not None:
                shown = row[i].strip()
                shown = shown if len(shown) <= 30 else shown[:27] + "..."
                problems[position] = (
                    f"column '{column['name']}': '{shown}' is {problem} ({column['kind']} column)"
                )
                break
            read[column["name"]] = value
        if position in problems:
            continue
        kept.append(position)
        for name, value in read.items():
            values[name].append(value)
    return values, kept, problems


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


def table_inputs(
    header: list[str], rows: list[list[str]], spec: dict[str, Any], source: str = "the CSV file"
) -> tuple[dict[str, np.ndarray], list[int], dict[int, str]]:
    """The graph's inputs for the rows that can be scored, their positions, and why each other
    row cannot be scored (its first value of the wrong type). A feature column missing from the
    header stops everything (a ``UsageError`` naming it)."""
    where = {name: i for i, name in enumerate(header)}
    columns = spec["columns"]
    for column in columns:
        if column["name"] not in where:
            raise UsageError(
                f"{source} has no column '{column['name']}' ({column['kind']}), which the model "
                f"needs; its columns: {', '.join(header) or 'none'}"
            )
    values, kept, problems = _read_values(where, rows, columns)
    feeds = {item["name"]: _feed(item, values) for item in spec["onnx_inputs"]}
    return feeds, kept, problems
