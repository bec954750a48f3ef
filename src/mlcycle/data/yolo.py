"""YOLO txt labels: ``root/images/**/<name>.<ext>`` with ``root/labels/**/<name>.txt``.

Each label line is ``class cx cy w h``, all but the class in 0..1 of the image's width and
height. An image without a label file (or with an empty one) is a negative: it holds no object.

Splits come from, in this order:

* an Ultralytics ``data.yaml`` in the root (or ``data.root`` pointing at a ``.yaml`` file):
  ``path`` (optional base), ``train``/``val``/``test`` (each an images folder, a list of them,
  or a ``.txt`` file listing image paths), ``names`` (list or ``{id: name}``), ``nc``. Labels
  are found by Ultralytics' rule: the last ``images`` path component becomes ``labels`` and the
  suffix ``.txt``. Every path must stay inside the root: one that leaves it is listed in
  ``skipped_files.csv`` ("path leaves the data root") and never opened.
* ``images/<split>/`` folders (names as in :mod:`mlcycle.data.layout`), labels in
  ``labels/<split>/``; or ``<split>/images/`` with ``<split>/labels/`` (Roboflow's export).

Class names come from ``data.classes``, the yaml's ``names``, ``root/classes.txt``.

A bad line (not five numbers, a class index beyond the classes, a width or height of zero or
less) skips its image, with the file, line and reason in ``skipped_files.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.detection import register_detection_source
from mlcycle.data.index import Listing
from mlcycle.data.layout import (
    PLAIN,
    folder_names,
    loose_files,
    split_folders,
    split_of,
    visible_dirs,
)
from mlcycle.data.splits import SPLITS
from mlcycle.data.yolo_labels import Reader
from mlcycle.data.yolo_yaml import from_yaml, load_yaml, yolo_classes


@register_detection_source("yolo")
def yolo(
    root: str | None = None,
    images_dir: str = "images",
    labels_dir: str = "labels",
    classes: list[str] | None = None,
    layout: str = "auto",
    **_: Any,
) -> Listing:
    """The YOLO data of ``root`` (a folder, or a ``.yaml`` file whose folder is the root)."""
    if not root:
        raise UserError(
            "data.root is not set; pass --data.root PATH to a folder with images/ and labels/ "
            "(or a data.yaml)"
        )
    given = Path(root).expanduser()
    if given.is_file() and given.suffix.lower() in (".yaml", ".yml"):
        spec_file: Path | None = given
        base = given.parent
    elif given.is_dir():
        base = given
        spec_file = next(
            (base / n for n in ("data.yaml", "data.yml") if (base / n).is_file()), None
        )
    else:
        raise UserError(f"data root '{given}' does not exist (a folder, or a data.yaml file)")
    spec = load_yaml(spec_file) if spec_file else {}
    if spec_file is not None and any(split_of(str(k)) for k in spec):
        return from_yaml(spec_file, spec, base, classes, layout)
    names = yolo_classes(base, classes, spec_file)
    listing = Listing([], str(given), class_names=names)
    reader = Reader(len(names))
    if not (base / images_dir).is_dir() and layout != "classes":
        folders = split_folders(base, layout, what=PLAIN)
        if folders:  # root/<split>/images + root/<split>/labels
            _split_first(reader, base, folders, images_dir, labels_dir, listing)
            return reader.fill(listing)
    _folders(reader, base, images_dir, labels_dir, layout, listing)
    return reader.fill(listing)


def _split_first(
    reader: Reader,
    base: Path,
    folders: dict[str, Path],
    images_dir: str,
    labels_dir: str,
    listing: Listing,
) -> None:
    """``root/<split>/images`` + ``root/<split>/labels`` (Roboflow's export)."""
    for split in SPLITS:
        if split in folders:
            inner = folders[split] / images_dir
            if not inner.is_dir():
                raise UserError(
                    f"'{inner}' does not exist; each split folder of '{base}' needs "
                    f"{images_dir}/ (and {labels_dir}/)"
                )
            reader.folder(inner, folders[split] / labels_dir, split)
    listing.given = set(folders)
    listing.text = (
        f"YOLO folders <split>/{images_dir}/ <split>/{labels_dir}/, "
        f"split folders {folder_names(folders)}"
    )


def _folders(
    reader: Reader, base: Path, images_dir: str, labels_dir: str, layout: str, listing: Listing
) -> None:
    """``root/images`` + ``root/labels``, or their ``<split>/`` folders."""
    images, labels = base / images_dir, base / labels_dir
    if not images.is_dir():
        raise UserError(
            f"'{images}' does not exist; a YOLO root holds {images_dir}/ and {labels_dir}/, "
            "split folders that each hold them, or a data.yaml"
        )
    beside = [p.name + "/" for p in visible_dirs(base) if split_of(p.name)]
    if beside and layout != "classes":
        raise UserError(
            f"'{base}' holds both {images_dir}/ and split folders ({', '.join(beside)}); keep one "
            f"layout, or set --data.layout=classes to read {images_dir}/ only (splits drawn)"
        )
    folders = split_folders(images, layout, what=PLAIN)
    if not folders:
        reader.folder(images, labels, None)
        listing.text = f"YOLO folders {images_dir}/ {labels_dir}/"
        return
    for split in SPLITS:
        if split in folders:
            reader.folder(folders[split], labels / folders[split].name, split)
    names = folder_names(folders)
    reader.skipped += loose_files(images, names)
    listing.given = set(folders)
    listing.text = (
        f"YOLO folders {images_dir}/<split>/ {labels_dir}/<split>/, split folders {names}"
    )
