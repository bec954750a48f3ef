"""A table row's features as the prediction store keeps them (``inputs``, and their sha256).
The rows themselves are read one by one by :mod:`.rows` (``read_row``, ``read_table``,
``feeds_for``), so a row from a JSON body, a CSV upload, predict.py's file and export's check
are read alike.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any


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
