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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlcycle.data.boxes import BoxSample
from mlcycle.data.images import is_image_file
from mlcycle.data.layout import (
    absolute,
    leaves_root,
    split_folders,
    split_of,
    visible_dirs,
    walk_files,
)
from mlcycle.data.sources import SPLITS
from mlcycle.errors import UserError

PLAIN = "plain image folder (splits drawn)"  # what a non-split folder is, in layout messages
LEAVES = "path leaves the data root"


@dataclass
class YoloListing:
    """What the reader found: samples (boxes not yet checked), class names, skipped entries,
    the splits the layout gives (empty: all drawn), the words for the ``layout:`` line and the
    files it was read from besides images and labels (data.yaml, image lists)."""

    samples: list[BoxSample]
    class_names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    given: set[str] = field(default_factory=set)
    text: str = ""
    files: list[Path] = field(default_factory=list)


def yaml_names(spec: dict[str, Any], file: Path) -> list[str] | None:
    """``names`` (a list, or ``{id: name}`` with ids 0..n-1) checked against ``nc``."""
    names = spec.get("names")
    if isinstance(names, dict):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise UserError(f"'{file}': the ids of 'names' must be 0..{len(keys) - 1}, got {keys}")
        names = [str(names[k]) for k in keys]
    elif isinstance(names, list) and names:
        names = [str(n) for n in names]
    else:
        names = None
    count = spec.get("nc")
    if count is not None:
        if not isinstance(count, int) or count < 1:
            raise UserError(f"'{file}': nc={count!r} is not a positive number of classes")
        if names is None:
            return [f"class_{i}" for i in range(count)]
        if len(names) != count:
            raise UserError(f"'{file}': nc={count} but 'names' lists {len(names)} classes")
    return names


def yolo_classes(root: Path, classes: list[str] | None, spec_file: Path | None = None) -> list[str]:
    """``data.classes``, else the yaml's ``names``, else ``root/classes.txt``."""
    if classes:
        return [str(c) for c in classes]
    spec_file = spec_file or next(
        (root / n for n in ("data.yaml", "data.yml") if (root / n).is_file()), None
    )
    if spec_file is not None:
        names = yaml_names(load_yaml(spec_file), spec_file)
        if names:
            return names
    if (root / "classes.txt").is_file():
        names = [n.strip() for n in (root / "classes.txt").read_text().splitlines() if n.strip()]
        if names:
            return names
    raise UserError(
        f"no class names for the YOLO data in '{root}': set data.classes, or write classes.txt "
        "(one name per line) or data.yaml with 'names'"
    )


def parse_label_file(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(boxes cx,cy,w,h in 0..1, class indices, problem or None)``."""
    boxes, labels = [], []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return (
            np.zeros((0, 4)),
            np.zeros(0, np.int64),
            f"label file {path.name} cannot be read: {exc}",
        )
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"label file {path.name} line {n}"
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = []
        if len(values) != 5:
            return (
                np.zeros((0, 4)),
                np.zeros(0, np.int64),
                f"{where}: expected 'class cx cy w h', got '{line.strip()[:60]}'",
            )
        cls, cx, cy, w, h = values
        if cls != int(cls) or not 0 <= cls < num_classes:
            return (
                np.zeros((0, 4)),
                np.zeros(0, np.int64),
                f"{where}: class {fields[0]} is not one of 0..{num_classes - 1}",
            )
        for value, what in ((w, "width"), (h, "height")):
            if value <= 0:
                kind = "negative" if value < 0 else "zero"
                return (
                    np.zeros((0, 4)),
                    np.zeros(0, np.int64),
                    f"{where}: box of {kind} {what} ({fields[3 if what == 'width' else 4]})",
                )
        boxes.append([cx, cy, w, h])
        labels.append(int(cls))
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(labels, np.int64), None


def load_yaml(file: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"'{file}' is not valid YAML: {' '.join(str(exc).split())}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"'{file}' cannot be read: {exc}") from exc
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise UserError(f"'{file}' must hold a mapping (path, train, val, test, names)")
    return spec


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path becomes ``labels``; suffix
    ``.txt`` (an image outside any ``images`` folder has its label beside it)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _place(entry: str, base: Path) -> Path:
    """``entry`` below ``base`` (unless absolute), normalized without following links."""
    path = Path(entry).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


class _Reader:
    """Collects samples in order; an image met twice keeps its first split."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.samples: list[BoxSample] = []
        self.skipped: list[tuple[str, str]] = []
        self.seen: dict[str, str | None] = {}

    def add(self, image: Path, label: Path, split: str | None) -> None:
        key = os.path.normpath(image)
        if key in self.seen:
            if self.seen[key] != split:
                self.skipped.append(
                    (str(image), f"also listed in the {self.seen[key]} split; kept there")
                )
            return
        self.seen[key] = split
        sample = BoxSample(image, len(self.samples) + 1, split=split, normalized=True)
        if label.is_file():
            sample.label_file = label
            sample.boxes, sample.labels, sample.problem = parse_label_file(label, self.num_classes)
            sample.crowd = np.zeros(len(sample.labels), bool)
        self.samples.append(sample)

    def folder(self, images: Path, labels: Path | None, split: str | None) -> None:
        """Every image below ``images``; its label below ``labels`` at the same place (or by
        Ultralytics' rule when ``labels`` is None)."""
        for path in walk_files(images):
            if is_image_file(path):
                rel = path.relative_to(images)
                label = label_path(path) if labels is None else labels / rel.with_suffix(".txt")
                self.add(path, label, split)

    def loose(self, folder: Path, names: str) -> None:
        self.skipped += [
            (str(p), f"not in a split folder ({names}) of {folder}")
            for p in sorted(folder.iterdir())
            if p.is_file() and is_image_file(p) and not p.name.startswith(".")
        ]


def read_yolo(
    root: str | None,
    images_dir: str = "images",
    labels_dir: str = "labels",
    classes: list[str] | None = None,
    layout: str = "auto",
) -> YoloListing:
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
    if any(split_of(str(k)) for k in spec):
        return _from_yaml(spec_file, spec, base, classes, layout)  # type: ignore[arg-type]
    names = yolo_classes(base, classes, spec_file)
    reader = _Reader(len(names))
    images, labels = base / images_dir, base / labels_dir
    if not images.is_dir() and layout != "classes":
        folders = split_folders(base, layout, what=PLAIN)
        if folders:  # root/<split>/images + root/<split>/labels
            for split in SPLITS:
                if split in folders:
                    inner = folders[split] / images_dir
                    if not inner.is_dir():
                        raise UserError(
                            f"'{inner}' does not exist; each split folder of '{base}' needs "
                            f"{images_dir}/ (and {labels_dir}/)"
                        )
                    reader.folder(inner, folders[split] / labels_dir, split)
            splits = " ".join(f"{folders[s].name}/" for s in SPLITS if s in folders)
            text = (
                f"YOLO folders <split>/{images_dir}/ <split>/{labels_dir}/, split folders {splits}"
            )
            return YoloListing(reader.samples, names, reader.skipped, set(folders), text, [])
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
        text = f"YOLO folders {images_dir}/ {labels_dir}/"
        return YoloListing(reader.samples, names, reader.skipped, set(), text, [])
    for split in SPLITS:
        if split in folders:
            reader.folder(folders[split], labels / folders[split].name, split)
    splits = " ".join(f"{folders[s].name}/" for s in SPLITS if s in folders)
    reader.loose(images, splits)
    text = f"YOLO folders {images_dir}/<split>/ {labels_dir}/<split>/, split folders {splits}"
    return YoloListing(reader.samples, names, reader.skipped, set(folders), text, [])


def _from_yaml(
    spec_file: Path,
    spec: dict[str, Any],
    root: Path,
    classes: list[str] | None,
    layout: str,
) -> YoloListing:
    """Splits and names from an Ultralytics data.yaml whose folder is the data root."""
    names = [str(c) for c in classes] if classes else yaml_names(spec, spec_file)
    if not names:
        names = yolo_classes(root, None, spec_file)  # classes.txt, or the error naming them
    files = [spec_file]
    base = root
    if spec.get("path"):
        base = _place(str(spec["path"]), root)
        if leaves_root(absolute(base), root):
            raise UserError(
                f"'{spec_file}': path '{spec['path']}' leaves the data root '{root}'; point "
                "data.root at the folder the data is in (holding this yaml), or change path"
            )
    entries: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for key, value in spec.items():
        split = split_of(str(key))
        if split is None or value in (None, "", []):
            continue
        if split in keys:
            raise UserError(f"'{spec_file}' has both '{keys[split]}' and '{key}'; keep one")
        keys[split] = str(key)
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise UserError(
                f"'{spec_file}': '{key}' must be a folder, a .txt file, or a list of them"
            )
        entries[split] = items
    if "train" not in entries:
        raise UserError(f"'{spec_file}' has no train entry; add 'train: images/train'")
    reader = _Reader(len(names))
    for split in SPLITS:
        for entry in entries.get(split, []):
            where = f"'{entry}' ({keys[split]} in {spec_file.name})"
            place = _place(entry, base)
            if leaves_root(absolute(place), root):
                # Roboflow writes '../train/images' next to a data.yaml in the root; Ultralytics
                # then looks for 'train/images' in the root, and so do we (never outside it).
                inside = _place(entry[3:], base) if entry.startswith("../") else None
                if inside is None or leaves_root(absolute(inside), root) or not inside.exists():
                    reader.skipped.append((str(place), f"{LEAVES} ({where})"))
                    continue
                place = inside
            if place.is_dir():
                reader.folder(place, None, split)
            elif place.is_file() and place.suffix.lower() == ".txt":
                files.append(place)
                _image_list(place, root, split, reader)
            elif place.is_file() and is_image_file(place):
                reader.add(place, label_path(place), split)
            else:
                raise UserError(f"{where} does not exist (read as {place})")
    lost = [s for s in entries if not any(x.split == s for x in reader.samples)]
    if "train" in lost:
        raise UserError(
            f"'{spec_file}': the train entry gives no image inside the data root '{root}'"
            + (f"; the first problem: {reader.skipped[0][1]}" if reader.skipped else "")
        )
    given = set(entries)  # a given split with no usable image stops later, naming it
    if layout == "classes":
        for sample in reader.samples:
            sample.split = None
        given = set()
    text = f"YOLO {spec_file.name} " + " ".join(f"{s}/" for s in SPLITS if s in given)
    return YoloListing(reader.samples, names, reader.skipped, given, text.rstrip(), files)


def _image_list(listing: Path, root: Path, split: str, reader: _Reader) -> None:
    """A .txt file of image paths, one per line, relative to the file's folder."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"image list '{listing}' cannot be read: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        place = _place(entry, listing.parent)
        if leaves_root(absolute(place), root):
            reader.skipped.append((str(place), f"{LEAVES} (line {n} of {listing.name}: '{entry}')"))
            continue
        reader.add(place, label_path(place), split)
