"""YOLO label files, and the reader that collects an image with its label file.

Each label line is ``class cx cy w h``, all but the class in 0..1 of the image's width and
height. An image without a label file (or with an empty one) is a negative: it holds no object.
A bad line (not five numbers, a class index beyond the classes, a width or height of zero or
less) skips its image, with the file, line and reason in ``skipped_files.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mlcycle.data.boxes import BoxSample
from mlcycle.data.images import is_image_file
from mlcycle.data.index import Listing
from mlcycle.data.layout import walk_files

LEAVES = "path leaves the data root"


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


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path becomes ``labels``; suffix
    ``.txt`` (an image outside any ``images`` folder has its label beside it)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def place(entry: str, base: Path) -> Path:
    """``entry`` below ``base`` (unless absolute), normalized without following links."""
    path = Path(entry).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


class Reader:
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

    def fill(self, listing: Listing) -> Listing:
        """``listing`` with the samples and skipped entries read."""
        listing.samples += self.samples
        listing.skipped += self.skipped
        return listing
