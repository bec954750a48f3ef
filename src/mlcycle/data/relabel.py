"""``data.relabel: FILE``: corrected labels that override the data's own for training, without
touching the user's files.

The file is a CSV with a ``label`` column and a column naming each item: ``path`` for images
(absolute, or relative to the relabel file's folder), ``row`` (the table's row number as read,
1-based, as ``splits.csv`` has it) or ``data.id_column``'s name for tables. ``mlcycle
label-issues`` writes ``label_issues.csv`` with these columns and a ``suggested`` one. A line
naming an item outside the data, or a class the data does not have, is one line of error that
names the line of the file (exit 2). The data module hashes the file into its manifest, so a
relabelled run has another data fingerprint.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError

ROLE = "relabel"  # the file's role in data_manifest.csv


@dataclass(frozen=True)
class Relabel:
    """One line of a relabel file: its number, the item's key (a path, a row, an id), the label."""

    line: int
    key: str
    label: str


def read_relabel(file: str | Path, key_columns: tuple[str, ...]) -> tuple[str, list[Relabel]]:
    """The key column found (the first of ``key_columns`` the file has) and its lines."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise UserError(f"relabel file '{file}' does not exist; fix data.relabel or unset it")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        key = next((c for c in key_columns if c in columns), None)
        if key is None or "label" not in columns:
            need = " or ".join(f"'{c}'" for c in key_columns)
            raise UserError(
                f"relabel file '{file}' needs a {need} column and a 'label' column (it has "
                f"{', '.join(columns) or 'none'})"
            )
        rows = [
            Relabel(line, (row[key] or "").strip(), (row["label"] or "").strip())
            for line, row in enumerate(reader, start=2)
        ]
    for row in rows:
        if not row.key or not row.label:
            raise UserError(f"relabel file '{file}' line {row.line}: '{key}' or 'label' is empty")
    return key, rows


def unknown_class(file: str | Path, row: Relabel, classes: list[str]) -> UserError:
    shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
    return UserError(
        f"relabel file '{file}' line {row.line}: class '{row.label}' is not one of the data's "
        f"classes ({shown})"
    )


def _normal(path: str | Path) -> str:
    return os.path.normpath(Path(path).expanduser().absolute())


def relabel_samples(samples: list[Any], file: str | Path) -> tuple[list[Any], int]:
    """``samples`` (with ``path`` and ``label``) with the file's labels; how many changed."""
    _, rows = read_relabel(file, ("path",))
    folder = Path(file).expanduser().absolute().parent
    position = {_normal(s.path): i for i, s in enumerate(samples)}
    classes = sorted({s.label for s in samples})
    out, changed = list(samples), 0
    for row in rows:
        at = position.get(_normal(folder / row.key))  # an absolute key ignores the folder
        if at is None:
            raise UserError(
                f"relabel file '{file}' line {row.line}: '{row.key}' is not an image of the "
                "data (paths are absolute or relative to the relabel file's folder)"
            )
        if row.label not in classes:
            raise unknown_class(file, row, classes)
        changed += out[at].label != row.label
        out[at] = replace(out[at], label=row.label)
    return out, changed
