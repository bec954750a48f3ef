"""Stratified k-fold assignment over train+val that depends only on file contents and a seed.

Within each class, the distinct contents are ordered by a seeded draw of their hash and dealt
to the folds in turn: every class is spread over the folds as evenly as it can be, identical
copies of an image always share a fold (no leakage through duplicates), and the assignment
does not depend on the order in which files were listed. The test split is never in a fold.

A :class:`Pool` is what a kind of data cuts into folds (the train+val images of an image data
module, the rows of a table); each kind builds its own (``Comparison.build_pool``).
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.data.splits import draw

TEST = "test"


def assign_folds(hashes: list[str], labels: list[str], folds: int, seed: int) -> list[int]:
    """The fold (0..folds-1) of each file, stratified by label."""
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (content, label) in enumerate(zip(hashes, labels, strict=True)):
        groups[label][content].append(i)
    assigned = [0] * len(hashes)
    for label, by_content in sorted(groups.items()):
        if len(by_content) < folds:
            raise UserError(
                f"class '{label}' has {len(by_content)} distinct train+val image(s); {folds} folds "
                f"need at least {folds}. Use fewer --folds or add images to it"
            )
        order = sorted(by_content, key=lambda h: (draw(seed, f"fold:{h}"), h))
        for rank, content in enumerate(order):
            for i in by_content[content]:
                assigned[i] = rank % folds
    return assigned


def write_fold_splits(
    path: Path,
    rows: list[tuple[str, object, str]],
    fold_of: dict[str, int],
    fold: int,
    column: str = "label",
) -> None:
    """A ``splits.csv`` for one fold: the fold is ``val``, the other folds ``train``, and the
    test split stays ``test`` (so the data module seals it exactly as train.py did)."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", column, "split"))
        for file, label, split in rows:
            if split == TEST:
                writer.writerow((file, label, TEST))
            else:
                writer.writerow((file, label, "val" if fold_of[file] == fold else "train"))


def assignment_digest(paths: list[str], hashes: list[str], folds: list[int]) -> str:
    """sha256 of the fold assignment: a resumed comparison must see the same folds."""
    digest = hashlib.sha256()
    for path, content, fold in sorted(zip(paths, hashes, folds, strict=True)):
        digest.update(f"{path},{content},{fold}\n".encode())
    return digest.hexdigest()


@dataclass
class Pool:
    """The train+val samples of the base data, with their folds; a kind of data subclasses it
    and writes the fold files its data module reads (``data.split_file``)."""

    data: Any  # the base data module
    positions: list[int]  # the samples' positions in the base data
    paths: list[str]  # their keys in the fold files (a path, a row's id)
    target: np.ndarray  # class index (or value) per sample
    folds: np.ndarray  # fold per sample
    class_names: list[str]
    digest: str  # of the fold assignment

    def __len__(self) -> int:
        return len(self.positions)

    def fold_rows(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (into the pool) that train fold ``fold``'s model, and the rows it predicts."""
        return np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)

    def write(self, out: Path, folds: int) -> list[Path]:
        """``out/folds.csv`` (key, label, fold; the test split is not listed) and one
        ``out/folds/fold<k>.csv`` split file per fold; returns those."""
        raise NotImplementedError
