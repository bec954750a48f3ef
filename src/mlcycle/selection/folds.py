"""Stratified k-fold assignment over train+val that depends only on file contents and a seed.

Within each class, the distinct contents are ordered by a seeded draw of their hash and dealt
to the folds in turn: every class is spread over the folds as evenly as it can be, identical
copies of an image always share a fold (no leakage through duplicates), and the assignment
does not depend on the order in which files were listed. The test split is never in a fold.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

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
