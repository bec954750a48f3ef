"""A filled ``to_label.csv`` back into the data: a row with a ``prediction_id`` (picked from
the prediction store) becomes a feedback row, as ``POST /v1/feedback`` records it
(``PredictionStore.add_feedback``; monitor then reads it, and training reads the store with a
SQL source); a row naming a file becomes a row of a ``path,label`` manifest (the CSV source's
format, paths relative to the manifest), added or, for a path it lists, relabeled.

Every row is checked before anything is written: bad input leaves the store and the
manifest as they were.
"""

from __future__ import annotations

import csv
import difflib
import os
from pathlib import Path

from mlcycle.core.errors import UserError

# The store's labeled images as a training source (data.source: sql, data.root above them):
# each prediction's latest feedback label, for images predict.py --db recorded by path.
TRAINING_QUERY = (
    "SELECT p.input_name AS path, f.label AS label FROM predictions p JOIN feedback f "
    "ON f.id = (SELECT MAX(id) FROM feedback WHERE prediction_id = p.id)"
)
Row = tuple[int, dict[str, str]]  # (line in the file, counting the header as 1; the row)


def read_labeled(path: Path) -> tuple[list[Row], int]:
    """The rows with a label, and how many are still empty."""
    if not path.is_file():
        raise UserError(f"--labeled '{path}' does not exist; pass the to_label.csv you filled")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(
                f"'{path}' has no {', '.join(sorted(missing))} column; pass a to_label.csv "
                "that label-next wrote (path, ..., prediction_id, label)"
            )
        rows = [(line, row) for line, row in enumerate(reader, start=2)]
    filled = [(line, row) for line, row in rows if (row.get("label") or "").strip()]
    return filled, len(rows) - len(filled)


def check_labels(path: Path, rows: list[Row], class_names: list[str] | None) -> None:
    """Each label is one of the model's classes, when they are known."""
    if not class_names:
        return
    for line, row in rows:
        label = row["label"].strip()
        if label not in class_names:
            close = difflib.get_close_matches(label, class_names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(
                f"'{path}' line {line}: label '{label}' is not a class of the model "
                f"({', '.join(class_names)}){hint}"
            )


def open_store(url: str):  # noqa: ANN201  (a PredictionStore; sqlalchemy stays lazy)
    """The prediction store at ``url``; one that does not exist is not created."""
    import sqlalchemy as sa

    from mlcycle.serve.store import PredictionStore

    try:
        engine = sa.create_engine(url)
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if engine.dialect.name == "sqlite" and not (database and Path(database).is_file()):
            raise UserError(f"--db '{url}': no SQLite database at '{database}'")
        known = sa.inspect(engine).has_table("predictions")
        engine.dispose()
    except (sa.exc.SQLAlchemyError, sa.exc.ArgumentError) as exc:
        raise UserError(f"--db '{url}' cannot be opened: {exc.__class__.__name__}") from exc
    if not known:
        raise UserError(f"--db '{url}' has no predictions table; is it a prediction store?")
    return PredictionStore(url)


def to_store(url: str, rows: list[Row]) -> tuple[int, list[str]]:
    """Each row's label as feedback on its prediction; how many were recorded, and the ids
    the store does not know."""
    store = open_store(url)
    recorded, unknown = 0, []
    try:
        for _, row in rows:
            pid = row["prediction_id"].strip()
            if store.add_feedback(pid, row["label"].strip()):
                recorded += 1
            else:
                unknown.append(pid)
    finally:
        store.engine.dispose()
    return recorded, unknown


def manifest_paths(path: Path, manifest: Path, rows: list[Row]) -> dict[str, str]:
    """Each row's file, relative to the manifest's folder, with its label; a file outside
    that folder is one line naming the row."""
    base = Path(os.path.abspath(manifest.parent))
    found = {}
    for line, row in rows:
        relative = os.path.relpath(os.path.abspath(row["path"].strip()), base)
        if relative.startswith(".."):
            raise UserError(
                f"'{path}' line {line}: '{row['path']}' is not under the manifest's folder "
                f"'{base}'; keep the manifest in a folder above the images"
            )
        found[Path(relative).as_posix()] = row["label"].strip()
    return found


def to_manifest(manifest: Path, labels: dict[str, str]) -> tuple[int, int]:
    """``labels`` (path -> label) into the ``path,label`` manifest: a listed path relabeled,
    others added (the file is created when missing); how many were added and relabeled."""
    header, rows = ["path", "label"], []
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        if not {"path", "label"} <= set(header):
            raise UserError(f"manifest '{manifest}' has no path and label columns")
    left = dict(labels)
    relabeled = 0
    for row in rows:
        key = Path(row["path"].strip()).as_posix()
        if key in left:
            relabeled += row["label"] != left[key]
            row["label"] = left.pop(key)
    rows += [{"path": p, "label": label} for p, label in left.items()]
    manifest.parent.mkdir(parents=True, exist_ok=True)
    partial = manifest.with_name(manifest.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(manifest)
    return len(left), relabeled


def import_labels(
    labeled: Path, db: str | None, manifest: Path | None, class_names: list[str] | None
) -> list[str]:
    """A filled to_label.csv into the store (``db``) and the ``manifest``; the lines to print."""
    rows, empty = read_labeled(labeled)
    if not rows:
        raise UserError(f"'{labeled}' has no filled label; fill its label column first")
    check_labels(labeled, rows, class_names)
    stored = [(n, r) for n, r in rows if (r.get("prediction_id") or "").strip()]
    files = [(n, r) for n, r in rows if not (r.get("prediction_id") or "").strip()]
    if stored and not db:
        raise UserError(f"'{labeled}' line {stored[0][0]} is a stored prediction: pass --db URL")
    if files and manifest is None:
        raise UserError(f"'{labeled}' line {files[0][0]} names a file: pass --manifest PATH.csv")
    labels = manifest_paths(labeled, manifest, files) if files and manifest else {}
    lines = [f"{empty} row(s) without a label left out"] if empty else []
    if stored and db:
        recorded, unknown = to_store(db, stored)
        lines.append(f"recorded {recorded} feedback label(s) in {db}")
        if unknown:
            lines.append(f"{len(unknown)} prediction id(s) unknown to the store: {unknown[:3]}")
    if labels and manifest is not None:
        added, relabeled = to_manifest(manifest, labels)
        lines.append(f"manifest {manifest}: {added} row(s) added, {relabeled} relabeled")
    return lines
