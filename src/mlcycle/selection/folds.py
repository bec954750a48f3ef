"""Stratified k-fold assignment over train+val that depends only on file contents and a seed.

Within each class, the distinct contents are ordered by a seeded draw of their hash and dealt
to the folds in turn: every class is spread over the folds as evenly as it can be, identical
copies of an image always share a fold (no leakage through duplicates), and the assignment
does not depend on the order in which files were listed. The test split is never in a fold.

Two other rules keep apart what the user said belongs together (``data.group_column``,
``data.time_column``), for tables and images alike (:func:`fold_plan`):

* **grouped** (:func:`group_folds`): every group's samples share one fold, the folds balanced
  by class as scikit-learn's ``StratifiedGroupKFold`` does (``GroupKFold`` for regression);
* **time-ordered** (:func:`time_folds`, forward chaining): the samples, oldest first, are cut
  into ``folds + 1`` blocks between two times; fold k trains on blocks 0..k and validates on
  block k + 1, with the last ``gap`` training rows before the validation block left out. The
  oldest block only trains, so it is not in the pool (no fold predicts it); the rows after a
  fold's validation block are ``unused`` in its split file, never read.

A :class:`Pool` is what a kind of data cuts into folds (the train+val images of an image data
module, the rows of a table); each kind builds its own (``Comparison.build_pool``).
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.data.splits import draw

TEST = "test"
UNUSED = "unused"  # a fold file's rows that neither train nor validate it (time folds)


def assign_folds(hashes: list[str], labels: list[str], folds: int, seed: int) -> list[int]:
    """The fold (0..folds-1) of each file, stratified by label."""
    check_count(folds)
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


@dataclass
class Cut:
    """Folds of some samples: ``folds`` per sample (-1: only trains, time folds), ``plan`` each
    key's role per fold (time folds; else empty) and how they were cut, in words."""

    folds: list[int]
    plan: dict[str, list[str]]
    how: str


def cut_folds(
    keys: list[str],
    hashes: list[str],
    strata: list[str] | None,
    folds: int,
    seed: int,
    groups: list[str] | None = None,
    times: pd.Series | None = None,
    gap: int = 0,
) -> Cut:
    """The folds of samples by time (``times``), by group (``groups``), else stratified by
    ``strata`` (class names; None: one stratum) and contents."""
    if times is not None:
        plan = time_folds(times, hashes, folds, gap)
        fold_of = [
            next((f for f, p in enumerate(plan) if p[i] == "val"), -1) for i in range(len(keys))
        ]
        roles = {key: [p[i] for p in plan] for i, key in enumerate(keys)}
        return Cut(fold_of, roles, f"time-ordered (forward chaining, gap {gap} rows)")
    if groups is not None:
        return Cut(group_folds(groups, hashes, strata, folds, seed), {}, "grouped")
    labels = strata if strata is not None else ["all"] * len(keys)
    return Cut(assign_folds(hashes, labels, folds, seed), {}, "stratified" if strata else "drawn")


def group_folds(
    groups: list[str], hashes: list[str], labels: list[str] | None, folds: int, seed: int
) -> list[int]:
    """The fold of each sample, every group in one fold; balanced by ``labels`` (class names)
    as far as the groups allow, or only by size (``labels`` None: regression)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    check_count(folds)
    distinct = sorted(set(groups))
    if len(distinct) < folds:
        raise UserError(
            f"data.group_column has {len(distinct)} group(s) in train+val; {folds} folds need at "
            f"least {folds} (every group stays in one fold). Use fewer --folds"
        )
    # the samples in a seeded order of their groups, then contents: the listing order is moot
    order = sorted(range(len(groups)), key=lambda i: (draw(seed, f"group:{groups[i]}"), hashes[i]))
    shuffled = [groups[i] for i in order]
    if labels is None:
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        target: list[str] = ["rows"] * len(order)
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        target = [labels[i] for i in order]
    assigned = [0] * len(groups)
    with warnings.catch_warnings():  # a class with fewer groups than folds: balanced as it can
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held) in enumerate(splitter.split(order, target, shuffled)):
            for j in held:
                assigned[order[j]] = fold
    return assigned


def time_folds(times: pd.Series, hashes: list[str], folds: int, gap: int) -> list[list[str]]:
    """Forward-chaining folds over samples with ``times``: per fold, each sample's role
    (``train``, ``val`` or :data:`UNUSED`). The oldest of ``folds + 1`` blocks only trains;
    fold k validates block k + 1 on the blocks before it, less the ``gap`` rows just before."""
    check_count(folds)
    if gap < 0:
        raise UserError(f"fold_gap {gap}: a gap is a number of rows, 0 or more")
    n = len(hashes)
    order = sorted(range(n), key=lambda i: (times.iloc[i], hashes[i]))
    values = times.to_numpy()
    sorted_times = values[order]
    # block of each sample: cuts at the times where a (k/(folds+1)) share of the rows has gone
    starts = [sorted_times[min(n - 1, round(n * b / (folds + 1)))] for b in range(1, folds + 1)]
    block = np.searchsorted(np.asarray(starts), values, side="right")
    present = set(block.tolist())
    if len(present) < folds + 1:
        raise UserError(
            f"data.time_column has {len(np.unique(sorted_times))} distinct time(s) in train+val; "
            f"{folds} time-ordered folds need at least {folds + 1} blocks of rows. Use fewer --folds"
        )
    plan = []
    for fold in range(folds):
        first_val = next(i for i in order if block[i] == fold + 1)
        rank = order.index(first_val)
        cutoff = sorted_times[max(0, rank - gap)] if gap else sorted_times[rank]
        roles = [
            "val" if b == fold + 1 else "train" if b <= fold and t < cutoff else UNUSED
            for b, t in zip(block, values, strict=True)
        ]
        if "train" not in roles:
            raise UserError(
                f"fold_gap {gap} leaves fold {fold} without a training row (its first "
                f"{rank} rows by time); lower fold_gap or use fewer --folds"
            )
        plan.append(roles)
    return plan


def check_count(folds: int) -> None:
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")


def write_fold_splits(
    path: Path,
    rows: list[tuple[str, object, str]],
    pool: Pool,
    fold: int,
    column: str = "label",
) -> None:
    """A ``splits.csv`` for one fold: the fold is ``val``, the other folds ``train`` (time folds:
    :meth:`Pool.split_in`), and the test split stays ``test`` (so the data module seals it
    exactly as train.py did)."""
    roles = pool.roles(fold)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", column, "split"))
        for file, label, split in rows:
            writer.writerow((file, label, TEST if split == TEST else roles[file]))


def assignment_digest(
    paths: list[str], hashes: list[str], folds: list[int], how: str = "stratified"
) -> str:
    """sha256 of the fold assignment: a resumed comparison must see the same folds."""
    digest = hashlib.sha256()
    if how not in ("stratified", "drawn"):  # k-fold digests stay as they were
        digest.update(f"{how}\n".encode())
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
    # time folds: each train+val key's role per fold (train, val, unused), the keys that only
    # train included; empty: the k-fold rule (a sample validates its fold, trains the others)
    plan: dict[str, list[str]] = field(default_factory=dict)
    how: str = "stratified"  # how the folds were cut, in words

    def __len__(self) -> int:
        return len(self.positions)

    def roles(self, fold: int) -> dict[str, str]:
        """Each train+val key's split in fold ``fold``'s split file."""
        if self.plan:
            return {key: roles[fold] for key, roles in self.plan.items()}
        return {
            key: "val" if f == fold else "train"
            for key, f in zip(self.paths, self.folds.tolist(), strict=True)
        }

    def fold_rows(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (into the pool) that train fold ``fold``'s model, and the rows it predicts."""
        if self.plan:
            train = [i for i, key in enumerate(self.paths) if self.plan[key][fold] == "train"]
            return np.asarray(train, dtype=np.int64), np.flatnonzero(self.folds == fold)
        return np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)

    def write(self, out: Path, folds: int) -> list[Path]:
        """``out/folds.csv`` (key, label, fold; the test split is not listed) and one
        ``out/folds/fold<k>.csv`` split file per fold; returns those."""
        raise NotImplementedError
