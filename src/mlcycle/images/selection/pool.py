"""The train+val images of an image data module, cut into folds.

The base data module is built once, exactly as train.py builds it (same layout, same sealed
test split); its train and val images form the pool, which is cut into folds: stratified by
class for a classifier's data, one stratum for segmentation and detection images (many classes
each). Each fold is written as a ``splits.csv`` that deep candidates train on
(``--data.split_file``), so every fold run sees the same test split, sealed, and never reads it.
Images split by a manifest's ``data.group_column`` are cut into grouped folds, by its
``data.time_column`` into time-ordered ones (:func:`mlcycle.selection.folds.cut_folds`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlcycle.data.index import column_values
from mlcycle.data.splits import read_times
from mlcycle.selection.folds import Pool, assignment_digest, cut_folds, write_fold_splits


@dataclass
class ImagePool(Pool):
    """The train+val images of the base data, in path order, with their folds."""

    classify: bool = True  # ``target`` holds class indices (folds stratified by them)

    def pixels(self, size: int) -> np.ndarray:
        """Every pool image as float32 rows in [0, 1], resized to at most ``size`` per side."""
        rows = [shrink(self.data.raw_image(p), size) for p in self.positions]
        return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0

    def image(self, row: int) -> np.ndarray:
        return self.data.raw_image(self.positions[row])

    def write(self, out: Path, folds: int) -> list[Path]:
        data = self.data
        index = data.index
        self.write_assignment(out / "folds.csv")
        rows = [
            (files[0][0], data.split_value(sample), split)
            for sample, files, split in zip(index.samples, index.files, index.splits, strict=True)
        ]
        (out / "folds").mkdir(exist_ok=True)
        files = []
        for fold in range(folds):
            path = out / "folds" / f"fold{fold}.csv"
            write_fold_splits(path, rows, self, fold, data.split_column)
            files.append(path)
        return files

    def write_assignment(self, path: Path) -> None:
        """``folds.csv``: each pool image's path, label and fold, and its manifest's group or
        time (``data.group_column`` / ``data.time_column``) when the folds honour one."""
        hp = self.data.hparams
        key = "time_column" if getattr(hp, "time_column", None) else "group_column"
        samples = [self.data.index.samples[p] for p in self.positions]
        values = column_values(samples, hp, key)
        column = getattr(hp, key, None) if values is not None else None
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("path", "label", "fold", *([column] if column else [])))
            for i, (image, target, fold) in enumerate(
                zip(self.paths, self.target, self.folds, strict=True)
            ):
                label = self.class_names[target] if self.classify else ""
                shown = [] if values is None else ["" if values[i] is None else values[i]]
                writer.writerow((image, label, int(fold), *shown))


def shrink(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (uint8 HxW[xC]) resized so neither side exceeds ``size``."""
    height, width = image.shape[:2]
    if max(height, width) <= size:
        return image
    scale = size / max(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    squeezed = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    out = np.asarray(Image.fromarray(squeezed).resize(shape, Image.BILINEAR))
    return out[..., None] if image.ndim == 3 and out.ndim == 2 else out


def build_image_pool(data: Any, folds: int, seed: int, by_class: bool, gap: int = 0) -> ImagePool:
    """The pool of ``data``'s train+val images. ``by_class``: folds stratified by each image's
    label (a classifier's data); else one stratum. Grouped or time-ordered folds where the
    data names a group or time column (``gap``: images left out before each time fold's val)."""
    index = data.index
    rows = sorted(
        (p for s in ("train", "val") for p in index.positions[s]),
        key=lambda p: index.files[p][0][0],
    )
    paths = [index.files[p][0][0] for p in rows]
    hashes = [index.files[p][0][1] for p in rows]
    labels = [index.samples[p].label if by_class else "images" for p in rows]
    hp, samples = data.hparams, [index.samples[p] for p in rows]
    groups = column_values(samples, hp, "group_column")
    if groups is not None:
        groups = [
            f"file:{h}" if g in (None, "") else f"group:{g}"
            for g, h in zip(groups, hashes, strict=True)
        ]
    times = column_values(samples, hp, "time_column")
    when = read_times(times, hp.time_column) if times is not None else None
    cut = cut_folds(paths, hashes, labels if by_class else None, folds, seed, groups, when, gap)
    keep = [j for j, f in enumerate(cut.folds) if f >= 0]  # time folds: the oldest only train
    lookup = {name: i for i, name in enumerate(index.class_names)}
    return ImagePool(
        data=data,
        positions=[rows[j] for j in keep],
        paths=[paths[j] for j in keep],
        target=np.array([lookup.get(labels[j], -1) for j in keep]),
        folds=np.array([cut.folds[j] for j in keep]),
        class_names=list(index.class_names),
        digest=assignment_digest(paths, hashes, cut.folds, cut.how),
        plan=cut.plan,
        how=cut.how,
        classify=by_class,
    )
