"""Where labelled images come from. One function per source, registered by name.

A source returns :class:`Sample` rows; adding a format (SQL, a cloud bucket) is one new
function decorated with :func:`register_source`, with no change to the DataModule.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcycle.data.images import is_image_file
from mlcycle.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``split`` is set when the user's layout already fixes it; ``meta``
    holds a manifest's or query's extra columns (for EDA)."""

    path: Path
    label: str
    split: str | None = None
    meta: dict[str, Any] | None = field(default=None, compare=False)


SourceFn = Callable[..., list[Sample]]
SOURCES: dict[str, SourceFn] = {}


def register_source(name: str) -> Callable[[SourceFn], SourceFn]:
    def decorator(fn: SourceFn) -> SourceFn:
        SOURCES[name] = fn
        return fn

    return decorator


def load_samples(source: str, **options: Any) -> list[Sample]:
    if source not in SOURCES:
        raise UserError(
            f"unknown data.source '{source}'; choose one of: {', '.join(sorted(SOURCES))}"
        )
    return SOURCES[source](**options)


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` (links followed) stays under ``root``."""
    return path.resolve().is_relative_to(root.resolve())


def _class_folder(root: Path, split: str | None = None) -> list[Sample]:
    samples = []
    for class_dir in _visible_dirs(root):
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and is_image_file(path) and not path.name.startswith("."):
                if not inside(path, root):
                    raise UserError(
                        f"'{path}' links outside the data root '{root}'; copy the file in or remove the link"
                    )
                samples.append(Sample(path, class_dir.name, split))
    return samples


@register_source("folder")
def folder_source(root: str | None = None, **_: Any) -> list[Sample]:
    """ImageFolder layout: ``root/<class>/*.png``, or ``root/{train,val[,test]}/<class>/*``."""
    if not root:
        raise UserError(
            "data.root is not set; pass --data.root PATH to a folder with one subfolder per class"
        )
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(
            f"data root '{root}' does not exist or is not a folder; "
            "pass --data.root PATH to a folder with one subfolder per class"
        )
    if (base / "train").is_dir() and (base / "val").is_dir():
        samples = []
        for split in SPLITS:
            if (base / split).is_dir():
                samples += _class_folder(base / split, split)
        return samples
    return _class_folder(base)


@register_source("csv")
def csv_source(
    manifest: str | None = None,
    path_column: str = "path",
    label_column: str = "label",
    **_: Any,
) -> list[Sample]:
    """A CSV manifest with ``path,label`` columns; paths are relative to the CSV's folder.

    An optional ``split`` column (train/val/test) fixes the split of each row.
    """
    if not manifest:
        raise UserError(
            "data.manifest is not set; pass --data.manifest PATH.csv with path,label columns"
        )
    csv_path = Path(manifest).expanduser()
    if not csv_path.is_file():
        raise UserError(f"manifest '{manifest}' does not exist; pass --data.manifest PATH.csv")
    root = csv_path.parent.resolve()
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for column, key in ((path_column, "path_column"), (label_column, "label_column")):
            if column not in columns:
                raise UserError(
                    f"manifest '{manifest}' has no '{column}' column (columns: {', '.join(columns) or 'none'}); "
                    f"add it or set data.{key}"
                )
        samples = []
        for line, row in enumerate(reader, start=2):
            rel, label = (row[path_column] or "").strip(), (row[label_column] or "").strip()
            if not rel or not label:
                raise UserError(
                    f"manifest '{manifest}' line {line}: empty {path_column} or {label_column}"
                )
            path = root / rel
            if not inside(path, root):
                raise UserError(
                    f"manifest '{manifest}' line {line}: path '{rel}' leads outside the manifest's folder "
                    f"{root}; keep image paths inside it"
                )
            split = (row.get("split") or "").strip() or None
            if split is not None and split not in SPLITS:
                raise UserError(
                    f"manifest '{manifest}' line {line}: split '{split}' is not one of {SPLITS}"
                )
            extra = {k: v for k, v in row.items() if k not in (path_column, label_column, "split")}
            samples.append(Sample(path, label, split, extra or None))
    return samples


@register_source("digits")
def digits_source(root: str | None = None, **_: Any) -> list[Sample]:
    """scikit-learn's bundled handwritten digits, written once as PNG files (no download)."""
    from mlcycle.data.digits import write_digits

    base = write_digits(Path(root or "data/digits"))
    return _class_folder(base)
