"""Stratified train/val/test splits that depend only on the file names, labels and a seed."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from mlcycle.errors import UserError


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def stratified_split(
    keys: list[str],
    labels: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """Return ``train``/``val``/``test`` for each key, stratified by label.

    Within each class, files are ordered by a hash of ``(seed, key)``; the first ``test`` share
    goes to test, the next ``val`` share to val. Each class keeps at least one file per split.
    """
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must each be in "
            "[0, 1) with val above 0 and their sum below 1"
        )
    by_class: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    splits = ["train"] * len(keys)
    need = 2 + (test_fraction > 0)
    for label, indexes in sorted(by_class.items()):
        n = len(indexes)
        n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise UserError(
                f"class '{label}' has {n} readable image(s); the train/val{'/test' if need == 3 else ''} "
                f"splits need at least {need} (and more for these fractions). Add images to it, remove "
                "the class, or set data.test_fraction=0"
            )
        ordered = sorted(indexes, key=lambda i: _rank(seed, keys[i]))
        for i in ordered[:n_test]:
            splits[i] = "test"
        for i in ordered[n_test : n_test + n_val]:
            splits[i] = "val"
    return splits
