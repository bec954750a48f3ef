"""YOLO txt labels: ``root/images/**/<name>.<ext>`` with ``root/labels/**/<name>.txt``.

Each label line is ``class cx cy w h``, all but the class in 0..1 of the image's width and
height. An image without a label file (or with an empty one) is a negative: it holds no object.
With ``images/{train,val[,test]}/`` sub-folders the split is taken from them. Class names come
from ``data.classes``, ``root/classes.txt`` or the ``names`` of ``root/data.yaml``.

A bad line (not five numbers, a class index beyond the classes, a width or height of zero or
less) skips its image, with the file, line and reason in ``skipped_files.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from mlcycle.data.boxes import BoxSample
from mlcycle.data.images import is_image_file
from mlcycle.data.sources import SPLITS, inside
from mlcycle.errors import UserError


def yolo_classes(root: Path, classes: list[str] | None) -> list[str]:
    if classes:
        return [str(c) for c in classes]
    if (root / "classes.txt").is_file():
        names = [n.strip() for n in (root / "classes.txt").read_text().splitlines() if n.strip()]
        if names:
            return names
    if (root / "data.yaml").is_file():
        spec = yaml.safe_load((root / "data.yaml").read_text()) or {}
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list) and names:
            return [str(n) for n in names]
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


def read_yolo(
    root: str | None, images_dir: str, labels_dir: str, num_classes: int
) -> list[BoxSample]:
    if not root:
        raise UserError(
            "data.root is not set; pass --data.root PATH to a folder with images/ and labels/"
        )
    base = Path(root).expanduser()
    images, labels = base / images_dir, base / labels_dir
    if not images.is_dir():
        raise UserError(
            f"'{images}' does not exist; a YOLO root holds {images_dir}/ and {labels_dir}/"
        )
    split_dirs = (images / "train").is_dir() and (images / "val").is_dir()
    samples = []
    for path in sorted(images.rglob("*")):
        if not (path.is_file() and is_image_file(path) and not path.name.startswith(".")):
            continue
        if not inside(path, base):
            raise UserError(
                f"'{path}' links outside the data root '{base}'; copy the file in or remove the link"
            )
        rel = path.relative_to(images)
        split = rel.parts[0] if split_dirs and rel.parts[0] in SPLITS else None
        label_file = labels / rel.with_suffix(".txt")
        sample = BoxSample(path, len(samples) + 1, split=split, normalized=True)
        if label_file.is_file():
            sample.label_file = label_file
            sample.boxes, sample.labels, sample.problem = parse_label_file(label_file, num_classes)
            sample.crowd = np.zeros(len(sample.labels), bool)
        samples.append(sample)
    return samples
