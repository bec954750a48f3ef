"""``data.relabel`` for tables: the target of the rows a relabel file names, replaced in the
table as read (a copy; the user's file is not touched). A row is named by ``row`` (its number
in the table as read, 1-based, as ``splits.csv`` has it) or by ``data.id_column``'s value
(a column of that name). The file format and its errors: :mod:`mlcycle.data.relabel`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.data.relabel import read_relabel, unknown_class
from mlcycle.tables.schema import Schema
from mlcycle.tables.values import label_texts


def relabel_frame(frame: pd.DataFrame, schema: Schema, hp: Any) -> tuple[pd.DataFrame, int]:
    """``frame`` with the target of the relabel file's rows replaced; how many changed."""
    file = hp.relabel
    key, rows = read_relabel(file, ("row", hp.id_column) if hp.id_column else ("row",))
    if key == "row":
        where = {str(i + 1): i for i in range(len(frame))}
    else:
        where = {text: i for i, text in enumerate(label_texts(frame[key]).astype(str))}
    target = frame[schema.target]
    texts = label_texts(target)
    value_of = {t: v for t, v in zip(texts, target, strict=True) if pd.notna(t)}  # keeps dtype
    classes = list(schema.classes)
    out, changed = frame.copy(), 0
    for row in rows:
        at = where.get(row.key)
        if at is None:
            raise UserError(
                f"relabel file '{file}' line {row.line}: {key} '{row.key}' is not a row of the "
                f"table ({len(frame)} rows)"
            )
        if schema.task == "classification":
            if row.label not in classes:
                raise unknown_class(file, row, classes)
            value = value_of[row.label]
        else:
            value = pd.to_numeric(row.label, errors="coerce")
            if pd.isna(value):
                raise UserError(
                    f"relabel file '{file}' line {row.line}: '{row.label}' is not a number"
                )
        changed += texts.iloc[at] != row.label
        out.iloc[at, out.columns.get_loc(schema.target)] = value
    return out, int(changed)
