"""What a data module knows about its data, and how it learns it.

A source lists samples (a :class:`Listing`, nothing decoded yet); every sample is then decoded
and hashed once, on a few threads (:func:`decode_all`), into a :class:`Decoded`: what the
dataset transforms, the files it was read from and the classes it holds. Unusable samples are
skipped with the reason. What survives becomes the :class:`Index`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import albumentations as A
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mlcycle.data.skipped import BadSample
from mlcycle.data.splits import SPLITS, assign_splits, check_coverage, splits_from_file
from mlcycle.errors import UserError

CACHE_LIMIT_BYTES = 1 << 30  # "auto" caching keeps decoded images in memory below this size

T = TypeVar("T")
R = TypeVar("R")
FileRow = tuple[str, str, int, str]  # path, sha256, bytes, what the file is (a label, "image")


@dataclass
class Listing:
    """What a source found, before any image is opened."""

    samples: list[Any]
    where: str  # the data's place, for messages
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    given: set[str] = field(default_factory=set)  # the splits the layout gives; empty: all drawn
    text: str = ""  # a few words on the layout, for the ``layout:`` line
    class_names: list[str] | None = None  # None: the training samples' labels, sorted
    category_ids: list[int] | None = None  # each class's id in the source's files; None: index
    files: list[tuple[Path, str]] = field(default_factory=list)  # other files read, with role


@dataclass
class Decoded:
    """One usable sample, decoded, resized and hashed."""

    sample: Any  # the sample, as decoding completed it (detection: boxes in pixels)
    item: Any  # what the dataset transforms: the resized image (with its mask or boxes)
    files: list[FileRow]  # the files the sample was read from, its image first
    classes: set[str]  # the classes it holds, for the class coverage of given splits
    stratum: str = "images"  # samples of one stratum are split in the same proportions


@dataclass
class Index:
    """Everything known about the data after reading and checking it."""

    samples: list[Any]
    splits: list[str]
    class_names: list[str]
    category_ids: list[int]
    channels: int
    skipped: list[tuple[str, str]]
    cache: list[Any] | None  # each sample's decoded item, when they fit in memory
    root: Path  # the deepest folder holding every image
    files: list[list[FileRow]]  # per sample, the files it was read from, its image first
    extra_files: list[FileRow]  # files read besides the samples' own (annotations, data.yaml)
    decode: Callable[[Any], Decoded]  # decodes a sample again when it is not cached
    layout: str = ""  # the words of the ``layout:`` line
    positions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def hashes(self) -> list[str]:
        """sha256 of each sample's image file."""
        return [rows[0][1] for rows in self.files]

    @property
    def sizes(self) -> list[int]:
        """Bytes of each sample's image file."""
        return [rows[0][2] for rows in self.files]

    def item(self, position: int) -> Any:
        """The decoded item of sample ``position`` (from the cache when there is one)."""
        if self.cache is not None:
            return self.cache[position]
        return self.decode(self.samples[position]).item


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T], desc: str, workers: int | None = None
) -> list[R]:
    """``[fn(x) for x in items]`` on a few threads (decoding releases the GIL); ``workers``
    defaults to the CPUs, at most 8."""
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return list(
            tqdm(
                pool.map(fn, items, chunksize=32),
                total=len(items),
                desc=desc,
                unit="img",
                disable=len(items) < 2000,
                leave=False,
            )
        )


def use_cache(flag: bool | None, count: int, bytes_each: int) -> bool:
    """``data.cache_images``: true, false, or ``None`` for "when it fits in 1 GiB"."""
    return bool(flag) or (flag is None and count * bytes_each < CACHE_LIMIT_BYTES)


def decode_all(
    decode: Callable[[Any], Decoded], samples: list[Any], what: str
) -> tuple[list[Decoded], list[tuple[str, str]]]:
    """The decoded usable samples, and ``(path, reason)`` of the others, in listing order."""

    def attempt(sample: Any) -> Decoded | str:
        try:
            return decode(sample)
        except BadSample as exc:
            return str(exc)

    results = parallel_map(attempt, samples, f"checking {what}")
    kept = [r for r in results if isinstance(r, Decoded)]
    skipped = [
        (str(s.path), r) for s, r in zip(samples, results, strict=True) if isinstance(r, str)
    ]
    return kept, skipped


def make_splits(kept: list[Decoded], listing: Listing, hp: Any, coverage: str) -> list[str]:
    """The splits of the kept samples: a run's recorded ones (``hp.split_file``), else the
    layout's, the rest drawn (``hp.val_fraction``, ``hp.test_fraction``, ``hp.split_seed``)."""
    if hp.split_file:
        return splits_from_file(hp.split_file, [d.files[0][0] for d in kept])
    given = [d.sample.split for d in kept]
    lost = [s for s in SPLITS if s in listing.given and s not in given]
    if lost:
        raise UserError(
            f"the layout of '{listing.where}' gives a {lost[0]} split, but none of its files "
            "is usable (see skipped_files.csv)"
        )
    for warning in check_coverage([d.classes for d in kept], given, coverage):
        print(f"warning: {warning}", file=sys.stderr)
    hashes, strata = [d.files[0][1] for d in kept], [d.stratum for d in kept]
    return assign_splits(given, hashes, strata, hp.val_fraction, hp.test_fraction, hp.split_seed)


class IndexDataset(Dataset):
    """Items of some of an index's samples, through a pipeline. Holds the index, not the data
    module, so worker processes get only what they need; a subclass makes the item."""

    def __init__(self, index: Index, positions: list[int], pipeline: A.Compose) -> None:
        self.index, self.positions, self.pipeline = index, positions, pipeline

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> Any:
        position = self.positions[i]
        return self.transform(self.index.item(position), position)

    def transform(self, item: Any, position: int) -> Any:
        raise NotImplementedError
