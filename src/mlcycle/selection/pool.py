"""The data a comparison shares: the train+val pool of the base config, cut into folds.

The base data module is built once, exactly as train.py builds it (same layout, same sealed
test split); its train and val images form the pool, which is cut into stratified folds. Each
fold is written as a ``splits.csv`` that deep candidates train on (``--data.split_file``), so
every fold run sees the same test split, sealed, and never reads it.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from mlcycle.core.imports import import_object
from mlcycle.selection.folds import assign_folds, assignment_digest, write_fold_splits


def resolve_config(args: list[str]) -> dict[str, Any]:
    """train.py's resolved config for ``args`` (checked like train.py checks it), as a dict."""
    from mlcycle.training.cli import MLCycleCLI
    from mlcycle.training.fit import _quiet

    class _Resolve(MLCycleCLI):
        def before_instantiate_classes(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            pass

    _quiet()
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)  # "Seed set to 42": the runs themselves say it
    try:
        cli = _Resolve(args)
    finally:
        seed_log.setLevel(level)
    return yaml.safe_load(cli.parser.dump(cli.config, skip_unset=False, skip_validation=True))


def build_data(config: dict[str, Any]) -> Any:
    """The data module of a resolved config."""
    cls = import_object(config["data"]["class_path"], "data class")
    return cls(**dict(config["data"].get("init_args") or {}))


@dataclass
class Pool:
    """The train+val images of the base data, in path order, with their folds."""

    data: Any  # the base data module (its index built)
    positions: list[int]  # positions in the base index
    paths: list[str]
    target: np.ndarray  # class index per image
    folds: np.ndarray  # fold per image
    class_names: list[str]
    digest: str  # of the fold assignment
    classify: bool = True  # classification (out-of-fold probabilities); else the runs' scores

    def __len__(self) -> int:
        return len(self.positions)

    def fold_rows(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (into the pool) that train fold ``fold``'s model, and the rows it predicts."""
        return np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)

    def pixels(self, size: int) -> np.ndarray:
        """Every pool image as float32 rows in [0, 1], resized to at most ``size`` per side."""
        rows = [shrink(self.data.raw_image(p), size) for p in self.positions]
        return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0

    def image(self, row: int) -> np.ndarray:
        return self.data.raw_image(self.positions[row])


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


def build_pool(data: Any, folds: int, seed: int) -> Any:
    """The pool of ``data``'s train+val images. Classification folds are stratified by class;
    segmentation and detection images (many classes each) are dealt as one stratum. A table
    gives a :class:`~mlcycle.selection.tables_pool.TablePool` of its rows."""
    from mlcycle.data.classification import ImageClassificationData
    from mlcycle.selection.tables_pool import build_table_pool, is_table

    if is_table(data):  # rows of a table, by their content hashes
        return build_table_pool(data, folds, seed)
    classify = isinstance(data, ImageClassificationData)
    index = data.index
    pool = sorted(
        (p for s in ("train", "val") for p in index.positions[s]),
        key=lambda p: index.files[p][0][0],
    )
    paths = [index.files[p][0][0] for p in pool]
    hashes = [index.files[p][0][1] for p in pool]
    labels = [index.samples[p].label if classify else "images" for p in pool]
    fold_of = assign_folds(hashes, labels, folds, seed)
    lookup = {name: i for i, name in enumerate(index.class_names)}
    return Pool(
        data=data,
        positions=pool,
        paths=paths,
        target=np.array([lookup.get(label, -1) for label in labels]),
        folds=np.array(fold_of),
        class_names=list(index.class_names),
        digest=assignment_digest(paths, hashes, fold_of),
        classify=classify,
    )


def write_folds(pool: Pool, out: Path, folds: int) -> list[Path]:
    """``folds.csv`` (path, label, fold; the test split is not listed) and one
    ``folds/fold<k>.csv`` split file per fold."""
    from mlcycle.selection.tables_pool import TablePool, write_table_folds

    if isinstance(pool, TablePool):
        return write_table_folds(pool, out, folds)
    data = pool.data
    index = data.index
    with (out / "folds.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "fold"))
        for path, target, fold in zip(pool.paths, pool.target, pool.folds, strict=True):
            label = pool.class_names[target] if pool.classify else ""
            writer.writerow((path, label, int(fold)))
    rows = [
        (files[0][0], data.split_value(sample), split)
        for sample, files, split in zip(index.samples, index.files, index.splits, strict=True)
    ]
    fold_of = dict(zip(pool.paths, (int(f) for f in pool.folds), strict=True))
    (out / "folds").mkdir(exist_ok=True)
    files = []
    for fold in range(folds):
        path = out / "folds" / f"fold{fold}.csv"
        write_fold_splits(path, rows, fold_of, fold, data.split_column)
        files.append(path)
    return files
