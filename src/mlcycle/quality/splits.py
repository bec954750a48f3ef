"""The split each file would get in training, computed from content hashes as the DataModule does."""

from __future__ import annotations

import csv
from pathlib import Path

from mlcycle.data.datamodule import ImageClassificationData
from mlcycle.data.sources import Sample
from mlcycle.data.splits import check_fractions, draw, stratified_split
from mlcycle.errors import UserError


def assign_splits(
    dm: ImageClassificationData, samples: list[Sample], hashes: list[str | None]
) -> list[str | None]:
    """``train``/``val``/``test`` per sample; ``None`` where the file is unreadable (hash None).

    Follows the data module: a ``split_file`` wins, then splits fixed by the source (folders or
    a ``split`` column), else the content-hash split. When a class is too small for that split
    (training would stop), each file keeps its drawn split so the checks can still run.
    """
    hp = dm.hparams
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
        return splits
    if any(s.split for s in samples):
        for i in readable:
            splits[i] = samples[i].split or "train"
        return splits
    check_fractions(hp.val_fraction, hp.test_fraction)
    digests = [hashes[i] or "" for i in readable]
    labels = [samples[i].label for i in readable]
    try:
        drawn = stratified_split(digests, labels, hp.val_fraction, hp.test_fraction, hp.split_seed)
    except UserError:
        val, test = hp.val_fraction, hp.test_fraction
        drawn = []
        for h in digests:
            u = draw(hp.split_seed, h)
            drawn.append("test" if u < test else "val" if u < test + val else "train")
    for i, split in zip(readable, drawn, strict=True):
        splits[i] = split
    return splits
