"""A served table model (``input.kind: table``): rows in, one answer or one error per row.

``POST /v1/predict`` takes JSON rows (``{"rows": [{column: value}, ...]}`` or a list of such
objects) or CSV files uploaded under ``files``. Each row is read as training read it
(``mlcycle.edge.table_rows``), the rows that read are scored by the one ONNX graph in
micro-batches, and each other row gets its own ``error`` naming the column and the value.
The store keeps each row's features as JSON (``inputs``) and their sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.edge.model import UsageError, read_meta
from mlcycle.edge.predict_rows import TableForm, table_session
from mlcycle.edge.rows import Cells, feeds_for, header_cells, read_row, text_rows
from mlcycle.edge.table_rows import inputs_json, inputs_sha256, json_cell, row_inputs
from mlcycle.serve.inputs import JSON, InputError, parse_multipart
from mlcycle.serve.model import Unreadable

MAX_ROWS = 10_000  # rows per request (the body is limited by --max-bytes too)
ROWS_HINT = 'send {"rows": [{"column": value, ...}, ...]} or a CSV file under \'files\''


@dataclass
class Row:
    """One request row, read: its name (the id column's value, else ``row N``)."""

    name: str
    number: int  # 1 = the request's first row
    read: dict[str, Any] = field(repr=False)
    inputs: dict[str, Any] = field(repr=False)


def json_rows(body: bytes) -> list[Any]:
    """The rows of a JSON body: ``{"rows": [...]}`` or a list; anything else is a 4xx."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(400, "bad_json", f"invalid JSON: {exc}") from exc
    if isinstance(payload, dict) and set(payload) == {"rows"}:
        payload = payload["rows"]
    if not isinstance(payload, list):
        raise InputError(422, "bad_json", f"the body holds no rows; {ROWS_HINT}")
    if not payload:
        raise InputError(422, "bad_json", f"'rows' is empty; {ROWS_HINT}")
    return payload


def json_cells(row: Any, columns: list[dict[str, Any]]) -> Cells:
    """A JSON row's cells as text; ValueError naming what is wrong with the row."""
    if not isinstance(row, dict):
        raise ValueError(f"a row is an object of column: value, not a JSON {type(row).__name__}")
    for column in columns:
        if column["name"] not in row:
            raise ValueError(
                f"no column '{column['name']}' ({column['kind']}); send null for a missing value"
            )
    cells: Cells = {}
    for name, value in row.items():
        try:
            cells[str(name)] = json_cell(value)
        except ValueError as exc:
            raise ValueError(f"column '{name}': {exc}") from exc
    return cells


def csv_cells(name: str, data: bytes, columns: list[dict[str, Any]]) -> list[Cells]:
    """The rows of an uploaded CSV file as cells, read as predict.py reads a file (encoding
    detected, delimiter sniffed: ``mlcycle.edge.rows.text_rows``); a file that does not read or
    lacks a feature column is a 400 naming it."""
    try:
        header, rows = text_rows(data, name)
        cells = header_cells(header, rows, {"columns": columns}, f"CSV file '{name}'")
    except UsageError as exc:
        raise InputError(400, "bad_csv", str(exc)[:800]) from exc
    return [c for c, row in zip(cells, rows, strict=True) if any(v.strip() for v in row)]


class ServedTable:
    """A table model's ONNX graph, its schema and its answers (``TableForm``)."""

    noun = "row"
    batched = True

    def __init__(self, path: Path, threads: int | None = None, **_options: Any) -> None:
        if not path.is_file():
            raise UserError(f"model '{path}' does not exist; pass RUN/export/model.onnx")
        try:
            self.meta = read_meta(path)
            self.session = table_session(path)
        except (UsageError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        except Exception as exc:  # onnxruntime's errors name the problem
            raise UserError(f"ONNX Runtime cannot load '{path}': {exc}") from exc
        self.path, self.run = path, self.session
        self.form = TableForm(self.meta)
        self.spec: dict[str, Any] = self.meta["input"]
        self.columns: list[dict[str, Any]] = self.spec["columns"]
        self.task = str(self.meta.get("task") or "tabular")
        self.names = [str(n) for n in self.meta.get("class_names") or []]
        self.version = file_sha256(path)

    def card_input(self) -> dict[str, Any]:
        """The schema ``/v1/model`` shows: each column's name, kind and, when model.json lists
        them, its categories."""
        keys = ("name", "kind", "categories")
        return {
            "kind": "table",
            "columns": [{k: c[k] for k in keys if k in c} for c in self.columns],
            "id_column": self.spec.get("id_column"),
            "target": self.spec.get("target"),
        }

    def _cells(self, kind: str, content_type: str, body: bytes, max_files: int) -> list[Any]:
        if kind == JSON:
            return json_rows(body)
        cells: list[Any] = []
        for name, data in parse_multipart(content_type, body, max_files):
            cells += csv_cells(name, data, self.columns)
        return cells

    def read(
        self, kind: str, content_type: str, body: bytes, max_files: int
    ) -> list[Row | Unreadable]:
        """Each row of the body, read, or why it cannot be scored."""
        given = self._cells(kind, content_type, body, max_files)
        if len(given) > MAX_ROWS:
            raise InputError(413, "too_many_rows", f"{len(given)} rows is over {MAX_ROWS}")
        id_column = self.spec.get("id_column")
        out: list[Row | Unreadable] = []
        for number, row in enumerate(given, start=1):
            name = f"row {number}"
            if isinstance(row, dict) and id_column and row.get(id_column) not in (None, ""):
                name = str(row[id_column])[:1000]
            try:
                cells = row if kind != JSON else json_cells(row, self.columns)
                read, problem = read_row(cells, self.columns)
            except ValueError as exc:
                read, problem = {}, str(exc)
            if problem is not None:
                out.append(Unreadable(name, problem, "bad_row", {"row": number}))
            else:
                out.append(Row(name, number, read, row_inputs(read)))
        return out

    def process(self, rows: list[Row]) -> list[dict[str, Any]]:
        """The answers for a batch of rows (the batcher's call)."""
        outputs = self.session.run(None, feeds_for([r.read for r in rows], self.spec))
        return self.form.rows([np.asarray(o) for o in outputs])

    def entry(self, row: Row) -> dict[str, Any]:
        """What a response names a row by."""
        return {"name": row.name, "row": row.number}

    def stored_columns(self, row: Row) -> dict[str, Any]:
        """The store's columns that describe the row (its features, as JSON)."""
        return {
            "input_name": row.name,
            "input_sha256": inputs_sha256(row.inputs),
            "inputs": inputs_json(row.inputs),
        }
