"""Table rows one by one, for the server and the prediction store: each row read as training
read it (``rows.read_cell``, cell by cell), the graph's inputs for a batch of read rows, and a
row's features as the store keeps them (``inputs``, and their sha256).

``rows.table_inputs`` reads a whole CSV file for export's check and predict.py; these read a
row at a time, so a row from a JSON body and a row from a CSV upload are read alike.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any

import numpy as np

from .model import UsageError
from .rows import _feed, read_cell

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


def json_cell(value: Any) -> str | None:
    """A JSON value as CSV text (null is missing, true/false as words); ValueError for a list
    or an object."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"a JSON {type(value).__name__} is not a value")


def row_inputs(read: dict[str, Any]) -> dict[str, Any]:
    """A row's features as the prediction store keeps them (its ``inputs`` column): numbers as
    numbers (true/false as 1/0), categories as text, dates in ISO 8601, missing as null."""
    out: dict[str, Any] = {}
    for name, value in read.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            out[name] = None
        elif isinstance(value, datetime):
            out[name] = value.isoformat()
        else:
            out[name] = value
    return out


def inputs_json(inputs: dict[str, Any]) -> str:
    """The canonical JSON of a row's features (sorted keys, no spaces)."""
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def inputs_sha256(inputs: dict[str, Any]) -> str:
    """sha256 of a row's features as canonical JSON: the store's ``input_sha256``."""
    return hashlib.sha256(inputs_json(inputs).encode("utf-8")).hexdigest()
