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

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.data.images import is_image_file
from mlcycle.data.layout import (
    absolute,
    describe_folders,
    leaves_root,
    loose_images,
    root_folder,
    split_folders,
    split_of,
    visible_dirs,
    walk_files,
)
from mlcycle.data.splits import SPLITS


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``split`` is set when the user's layout already fixes it; ``meta``
    holds a manifest's or query's extra columns (for EDA)."""

    path: Path
    label: str
    split: str | None = None
    meta: dict[str, Any] | None = field(default=None, compare=False)


@dataclass
class Found:
    """What a source read: the samples, the rows it skipped (``(path, reason)``, the reason
    naming the line or row) and a few words on the layout for the ``layout:`` line."""

    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    layout: str = ""


SourceFn = Callable[..., "list[Sample] | Found"]
# A source is ``fn(**options) -> list[Sample] | Found``; it receives every data key it may need
# (root, manifest, url, query, path_column, label_column, layout and data.source_options) and
# ignores the rest. Plugins register through the ``mlcycle.data_sources`` entry-point group.
SOURCES: Registry[SourceFn] = Registry(
    "classification data source", "data.source", "mlcycle.data_sources", ["mlcycle.data"]
)
register_source = SOURCES.register


def load_samples(source: str, **options: Any) -> Found:
    found = SOURCES.get(source)(**options)
    return found if isinstance(found, Found) else Found(list(found), [], f"source {source}")


def given_split(value: Any, where: str) -> str | None:
    """A manifest's or query's ``split`` value as train/val/test (aliases such as ``valid`` or
    ``testing`` accepted, any case); empty means "not fixed"."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    split = split_of(text)
    if split is None:
        raise UserError(
            f"{where}: split '{text}' is not one of train, val (valid, validation, dev), "
            "test (testing)"
        )
    return split


def row_problem(
    where: str, path: str, label: str, root: Path, columns: tuple[str, str]
) -> str | None:
    """Why a manifest or query row is skipped (``where`` names its line or row), or ``None``."""
    if not path:
        return f"{where}: empty {columns[0]}"
    if not label:
        return f"{where}: empty {columns[1]}"
    if leaves_root(path, root):
        return f"{where}: path leaves the data root {root}"
    return None


def _class_folder(root: Path, split: str | None = None) -> list[Sample]:
    samples = []
    for class_dir in visible_dirs(root):
        for path in walk_files(class_dir):
            if is_image_file(path):
                samples.append(Sample(path, class_dir.name, split))
    return samples


@register_source("folder")
def folder_source(root: str | None = None, layout: str = "auto", **_: Any) -> Found:
    """``root/<class>/*`` or ``root/<split>/<class>/*`` with split folders named train, val
    (valid, validation, dev) and test (testing), any case. Links inside the root are followed."""
    base = root_folder(root, "a folder with one subfolder per class")
    folders = split_folders(base, layout or "auto")
    if folders:
        samples, skipped, notes = [], [], []
        for split in SPLITS:
            if split not in folders:
                continue
            folder = folders[split]
            loose = [str(p) for p in loose_images(folder)]
            if split != "train" and loose and not visible_dirs(folder):
                # Kaggle-style unlabeled test images: listed, not used; the split is drawn.
                notes.append(f"{folder.name}/ holds {len(loose)} unlabeled images, not used")
                skipped += [(p, f"unlabeled: {folder.name}/ has no class folders") for p in loose]
                del folders[split]
                continue
            skipped += [(p, f"not in a class folder of {folder.name}/") for p in loose]
            samples += _class_folder(folder, split)
        text = "; ".join([describe_folders(folders), *notes])
        return Found(samples, skipped, text)
    return Found(_class_folder(base), [], "class folders")


@register_source("csv")
def csv_source(
    manifest: str | None = None,
    path_column: str = "path",
    label_column: str = "label",
    **_: Any,
) -> Found:
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
    root = absolute(csv_path.parent)
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for column, key in ((path_column, "path_column"), (label_column, "label_column")):
            if column not in columns:
                raise UserError(
                    f"manifest '{manifest}' has no '{column}' column (columns: {', '.join(columns) or 'none'}); "
                    f"add it or set data.{key}"
                )
        samples, skipped = [], []
        for line, row in enumerate(reader, start=2):
            rel, label = (row[path_column] or "").strip(), (row[label_column] or "").strip()
            problem = row_problem(f"line {line}", rel, label, root, (path_column, label_column))
            if problem:
                skipped.append((rel or f"{csv_path.name}:{line}", problem))
                continue
            split = given_split(row.get("split"), f"manifest '{manifest}' line {line}")
            extra = {k: v for k, v in row.items() if k not in (path_column, label_column, "split")}
            samples.append(Sample(root / rel, label, split, extra or None))
    given = sorted({s.split for s in samples if s.split}, key=SPLITS.index)
    column = f" with a split column ({', '.join(given)})" if given else ""
    return Found(samples, skipped, f"CSV manifest {csv_path.name}{column}")


@register_source("digits")
def digits_source(root: str | None = None, **_: Any) -> Found:
    """scikit-learn's bundled handwritten digits, written once as PNG files (no download)."""
    from mlcycle.data.digits import write_digits

    base = write_digits(Path(root or "data/digits"))
    return Found(_class_folder(base), [], f"built-in digits in {base}/, class folders")


@register_source("stream")
def stream_source(root: str | None = None, **_: Any) -> Found:
    """litdata's chunks written by ``mlcycle optimize``: read by the data module their
    ``stream.json`` names, which train.py's parser puts in place (data/stream_kinds.py)."""
    raise UserError(
        f"data.source 'stream' ({root or 'no data.root'}) is read through train.py's config "
        "(the class the stream's stream.json names), or data.class_path "
        "mlcycle.data.stream.StreamImageData (docs/distributed.md, Streamed data)"
    )
