"""Train/val/test splits that are a function of each file's contents and a seed.

Each file draws a number in [0, 1) from ``sha256(seed, content hash)``: below
``test_fraction`` it is a test file, below ``test_fraction + val_fraction`` a val file, else a
train file. Adding or removing files therefore never moves another file between splits, and
identical copies of an image always land in the same split (no leakage through duplicates).
Every class is thus split in the same proportions on average; a class that drew no file for
some split (small classes) gets one from its largest split, the only case where a file can move
when others are added.

Two other ways keep what belongs together (the same functions split tables and images):
:func:`group_split` (``data.group_column``: each group draws, so all samples of one patient or
camera share a split) and :func:`time_split` (``data.time_column``: the oldest samples train,
the next validate, the most recent test).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError

SPLITS = ("train", "val", "test")


def draw(seed: int, content_hash: str) -> float:
    """A number in [0, 1) fixed by the seed and the file's contents."""
    digest = hashlib.sha256(f"{seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _fractions_ok(val: float, test: float, need_val: bool = True) -> bool:
    """Each fraction in [0, 1), val above 0 when it is drawn (``need_val``), their sum below 1."""
    return (not need_val or 0 < val < 1) and 0 <= test < 1 and val + test < 1


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not _fractions_ok(val_fraction, test_fraction):
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
    return _draw(hashes, labels, val_fraction, test_fraction, seed)


def _draw(
    hashes: list[str], labels: list[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """The seeded draw; a split whose fraction is 0 is not drawn."""
    draws = [draw(seed, h) for h in hashes]
    splits = [
        "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        for u in draws
    ]
    by_class: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    wanted = (["val"] if val_fraction > 0 else []) + (["test"] if test_fraction > 0 else [])
    for label, indexes in sorted(by_class.items()):
        if len(indexes) < 1 + len(wanted):
            raise UserError(
                f"class '{label}' has {len(indexes)} readable training image(s); the "
                f"{'/'.join(['train', *wanted])} splits need at least {1 + len(wanted)}. Add images "
                "to it, remove the class, or set data.test_fraction=0"
            )
        for split in ["train", *wanted]:
            if any(splits[i] == split for i in indexes):
                continue
            # Take files from the largest split of this class (it has two or more by now):
            # every copy of one content moves together, so duplicates never straddle splits.
            sizes = defaultdict(list)
            for i in indexes:
                sizes[splits[i]].append(i)
            donors = max(sizes.values(), key=len)
            groups: dict[str, list[int]] = defaultdict(list)
            for i in donors:
                groups[hashes[i]].append(i)
            movable = [g for g in groups.values() if len(g) < len(donors)] or [[donors[0]]]
            pick = (
                max(movable, key=lambda g: draws[g[0]])
                if split == "train"
                else min(movable, key=lambda g: draws[g[0]])
            )
            for i in pick:
                splits[i] = split
    return splits


def assign_splits(
    given: list[str | None],
    hashes: list[str],
    labels: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """Splits for every file.

    Splits the layout fixed (``given``, ``None`` for "not fixed", which counts as train when
    others are fixed) are kept; a missing val is drawn from train, and a missing test too unless
    ``test_fraction`` is 0. Without any fixed split, every file is drawn.
    """
    fixed = {g for g in given if g}
    if not fixed:
        return stratified_split(hashes, labels, val_fraction, test_fraction, seed)
    splits = [g or "train" for g in given]
    val = val_fraction if "val" not in fixed else 0.0
    test = test_fraction if "test" not in fixed else 0.0
    if not _fractions_ok(val, test, need_val="val" not in fixed):
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction}: the splits "
            "drawn from train need a val fraction above 0 (when val is not given) and a sum below 1"
        )
    pool = [i for i, s in enumerate(splits) if s == "train"] if val or test else []
    drawn = _draw([hashes[i] for i in pool], [labels[i] for i in pool], val, test, seed)
    for i, split in zip(pool, drawn, strict=True):
        splits[i] = split
    return splits


def group_split(
    groups: list[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Splits in which every group's rows stay together: each group draws its split from
    ``sha256(seed, group)``. A split left without a group gets the group whose draw lies
    closest to it (taken from the split with the most groups)."""
    check_fractions(val_fraction, test_fraction)
    names = sorted(set(groups))
    wanted = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    if len(names) < len(wanted):
        raise UserError(
            f"data.group_column has {len(names)} group(s); {'/'.join(wanted)} need at least "
            f"{len(wanted)} (every group stays in one split)"
        )
    draws = {g: draw(seed, f"group:{g}") for g in names}

    def split_of(u: float) -> str:
        return (
            "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        )

    assigned = {g: split_of(u) for g, u in draws.items()}
    middle = {"test": test_fraction / 2, "val": test_fraction + val_fraction / 2, "train": 1.0}
    for split in wanted:
        if split in assigned.values():
            continue
        sizes = Counter(assigned.values())
        donor = max((s for s in sizes if sizes[s] > 1), key=lambda s: sizes[s])
        pick = min(
            (g for g, s in assigned.items() if s == donor),
            key=lambda g: abs(draws[g] - middle[split]),
        )
        assigned[pick] = split
    return [assigned[g] for g in groups]


def time_split(
    times: pd.Series, hashes: list[str], val_fraction: float, test_fraction: float
) -> list[str]:
    """The oldest ``1 - val - test`` of the rows train, the next ``val`` validate and the most
    recent ``test`` test; the cuts fall between two times, so rows of one time share a split."""
    check_fractions(val_fraction, test_fraction)
    n = len(hashes)
    values = times.to_numpy()
    order = sorted(range(n), key=lambda i: (values[i], hashes[i]))
    ordered = values[order]

    def cut(share: float) -> object:
        return ordered[min(n - 1, int(round(n * share)))]

    val_start = cut(1 - val_fraction - test_fraction)
    test_start = cut(1 - test_fraction) if test_fraction > 0 else None
    splits = []
    for v in values:
        if test_start is not None and v >= test_start:
            splits.append("test")
        elif v >= val_start:
            splits.append("val")
        else:
            splits.append("train")
    counts = Counter(splits)
    wanted = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    empty = [s for s in wanted if not counts[s]]
    if empty:
        raise UserError(
            f"data.time_column has too few distinct times for a {empty[0]} split "
            f"({len(np.unique(ordered))} distinct); lower data.val_fraction/test_fraction or "
            "split without a time column"
        )
    return splits


def read_times(values: list[object], column: str) -> pd.Series:
    """A manifest's or query's time values as numbers or dates (one line naming the first value
    that is neither)."""
    series = pd.Series(["" if v is None else v for v in values], dtype=object)
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().all():
        return numbers
    dates = pd.to_datetime(series.astype(str), errors="coerce", format="mixed")
    bad = dates.isna() if numbers.isna().all() else numbers.isna() & dates.isna()
    if bad.any():
        raise UserError(
            f"data.time_column '{column}' has '{series[bad].iloc[0]}', neither a date nor a "
            "number; fix the value or unset data.time_column"
        )
    return dates


def split_by_column(
    hashes: list[str], groups: list[Any] | None, times: list[Any] | None, hp: Any
) -> list[str]:
    """Splits of samples that keep a group together (``groups``: each sample's value of
    ``hp.group_column``) or put the latest samples in val and test (``times``: of
    ``hp.time_column``); ``hp`` holds the fractions and the seed."""
    val, test = hp.val_fraction, hp.test_fraction
    if times is not None:
        return time_split(read_times(times, hp.time_column), hashes, val, test)
    keys = [
        f"file:{h}" if g is None or str(g).strip() == "" else f"group:{g}"
        for g, h in zip(groups or [], hashes, strict=True)
    ]
    return group_split(keys, val, test, hp.split_seed)


def describe_draw(
    given: set[str], val_fraction: float, test_fraction: float, split_file: str | None = None
) -> str:
    """How the splits are made, for the ``layout:`` line: ``splits drawn (val 15%, test 15%)``,
    ``val drawn from train (15%)``, ``splits from runs/x/splits.csv``; empty when all given."""
    if split_file:
        return f"splits from {split_file}"
    if not given:
        test = f"test {test_fraction:.0%}" if test_fraction > 0 else "no test split"
        return f"splits drawn (val {val_fraction:.0%}, {test})"
    words = []
    if "val" not in given:
        words.append(f"val drawn from train ({val_fraction:.0%})")
    if "test" not in given:
        words.append(
            f"test drawn from train ({test_fraction:.0%})"
            if test_fraction > 0
            else "no test split (data.test_fraction=0)"
        )
    return "; ".join(words)


def check_coverage(
    present: list[Iterable[str]], given: list[str | None], what: str = "image"
) -> list[str]:
    """Class coverage of the splits a layout gives (``present``: the classes in each file).

    A class found in a given val or test split but never in train is an error (a model cannot
    learn it); a class in train but missing from a given val or test split is a warning.
    """
    fixed = {g for g in given if g}
    if not fixed:
        return []
    found: dict[str, set[str]] = {s: set() for s in ("train", "val", "test")}
    for classes, split in zip(present, given, strict=True):
        found[split or "train"].update(classes)
    only = sorted((found["val"] | found["test"]) - found["train"])
    if only:
        listed = ", ".join(
            f"'{c}' ({'/'.join(s for s in ('val', 'test') if c in found[s])})" for c in only
        )
        raise UserError(
            f"class(es) {listed} have {what}s in val or test but none in train; a model cannot "
            "learn them. Add training data with them, or remove them from val/test"
        )
    return [
        f"class '{c}' has no {what} in the given {split} split; its {split} score cannot be measured"
        for split in ("val", "test")
        if split in fixed
        for c in sorted(found["train"] - found[split])
    ]


def splits_from_file(path_text: str, paths: list[str]) -> list[str]:
    """The split of every path, as a run's ``splits.csv`` recorded it."""
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"split file '{path}' does not exist")
    with path.open(newline="") as fh:
        recorded = {row["path"]: row["split"] for row in csv.DictReader(fh)}
    splits = []
    for image in paths:
        split = recorded.get(str(image))
        if split is None:
            raise UserError(
                f"'{image}' is not in split file '{path}'; the data changed since that run"
            )
        splits.append(split)
    return splits
