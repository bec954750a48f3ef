"""The split each file would get in training, computed from content hashes as the DataModule does."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.layout import announce
from mlcycle.data.sources import Found
from mlcycle.data.splits import assign_splits as data_splits
from mlcycle.data.splits import check_coverage, check_fractions, describe_draw, draw


def assign_splits(dm: Any, found: Found, hashes: list[str | None]) -> list[str | None]:
    """``train``/``val``/``test`` per sample of a classification data module ``dm``; ``None``
    where the file is unreadable (hash None).

    Follows the data module: a ``split_file`` wins, then splits fixed by the layout (split
    folders or a ``split`` column, missing ones drawn from train), else the content-hash split.
    When a class is too small for that split (training would stop), each file keeps its drawn
    split so the checks can still run. Prints the ``layout:`` line as training does.
    """
    hp = dm.hparams
    samples = found.samples
    readable = [i for i, h in enumerate(hashes) if h is not None]
    splits: list[str | None] = [None] * len(samples)
    if hp.split_file:
        path = Path(hp.split_file)
        if not path.is_file():
            raise UserError(f"split file '{path}' does not exist")
        with path.open(newline="") as fh:
            recorded = {row["path"]: row["split"] for row in csv.DictReader(fh)}
        for i in readable:
            splits[i] = recorded.get(str(samples[i].path))
        announce(f"{found.layout}; {describe_draw(set(), 0, 0, str(path))}")
        return splits
    given = [samples[i].split for i in readable]
    fixed = {g for g in given if g}
    words = describe_draw(fixed, hp.val_fraction, hp.test_fraction)
    announce(f"{found.layout}; {words}" if words else found.layout)
    digests = [hashes[i] or "" for i in readable]
    labels = [samples[i].label for i in readable]
    try:
        for warning in check_coverage([[label] for label in labels], given):
            print(f"warning: {warning}", file=sys.stderr)
    except UserError as exc:  # reported, not fatal: the checks can still run
        print(f"warning: {exc}", file=sys.stderr)
    try:
        drawn = data_splits(
            given, digests, labels, hp.val_fraction, hp.test_fraction, hp.split_seed
        )
    except UserError:
        check_fractions(hp.val_fraction, hp.test_fraction)
        val = 0.0 if "val" in fixed else hp.val_fraction
        test = 0.0 if "test" in fixed else hp.test_fraction
        drawn = []
        for g, h in zip(given, digests, strict=True):
            u = draw(hp.split_seed, h)
            drawn.append(g if g and g != "train" else _pick(u, val, test))
    for i, split in zip(readable, drawn, strict=True):
        splits[i] = split
    return splits


def _pick(u: float, val: float, test: float) -> str:
    return "test" if u < test else "val" if u < test + val else "train"
