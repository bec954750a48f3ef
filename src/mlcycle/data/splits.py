"""Train/val/test splits that are a function of each file's contents and a seed.

Each file draws a number in [0, 1) from ``sha256(seed, content hash)``: below
``test_fraction`` it is a test file, below ``test_fraction + val_fraction`` a val file, else a
train file. Adding or removing files therefore never moves another file between splits, and
identical copies of an image always land in the same split (no leakage through duplicates).
Every class is thus split in the same proportions on average; a class that drew no file for
some split (small classes) gets one from its largest split, the only case where a file can move
when others are added.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from mlcycle.errors import UserError


def draw(seed: int, content_hash: str) -> float:
    """A number in [0, 1) fixed by the seed and the file's contents."""
    digest = hashlib.sha256(f"{seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must each be in "
            "[0, 1) with val above 0 and their sum below 1"
        )


def stratified_split(
    hashes: list[str],
    labels: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """Return ``train``/``val``/``test`` for each file (given by its content hash and label)."""
    check_fractions(val_fraction, test_fraction)
    draws = [draw(seed, h) for h in hashes]
    splits = [
        "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        for u in draws
    ]
    by_class: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    wanted = ["val"] + (["test"] if test_fraction > 0 else [])
    for label, indexes in sorted(by_class.items()):
        if len(indexes) < 1 + len(wanted):
            raise UserError(
                f"class '{label}' has {len(indexes)} readable image(s); the train/{'/'.join(wanted)} "
                f"splits need at least {1 + len(wanted)}. Add images to it, remove the class, or set "
                "data.test_fraction=0"
            )
        for split in ["train", *wanted]:
            if any(splits[i] == split for i in indexes):
                continue
            # Take a file from the largest split of this class (it has two or more by now).
            sizes = defaultdict(list)
            for i in indexes:
                sizes[splits[i]].append(i)
            donors = max(sizes.values(), key=len)
            pick = (
                max(donors, key=lambda i: draws[i])
                if split == "train"
                else min(donors, key=lambda i: draws[i])
            )
            splits[pick] = split
    return splits
