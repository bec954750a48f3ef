"""What a data module knows about its data, and how it learns it.

A source lists samples (a :class:`Listing`, nothing decoded yet). Each sample names the files it
is read from and the facts it needs of them (:mod:`mlcycle.data.file_facts`: hash, size, image size,
a mask's classes); facts not in the index cache are read on all cores (:func:`gather_facts`),
then every sample is checked against its files' facts into a :class:`Checked`: the files' rows
and the classes it holds. Unusable samples are skipped with the reason. What survives becomes
the :class:`Index`; the items the dataset transforms (resized image, mask, boxes) are decoded
later, on demand or in one parallel pass into memory (``data.cache_images``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import albumentations as A
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.data.file_facts import Facts, read_job
from mlcycle.data.index_cache import IndexCache, Key, Stat, file_stat
from mlcycle.data.skipped import BadSample
from mlcycle.data.splits import (
    SPLITS,
    assign_splits,
    check_coverage,
    split_by_column,
    splits_from_file,
)
from mlcycle.data.transforms import resize

CACHE_LIMIT_BYTES = 1 << 30  # "auto" caching keeps decoded images in memory below this size
MIN_PARALLEL = 256  # fewer files are read in this process: starting workers costs more
STORE_EVERY = 2000  # facts are stored in batches, so an interrupted first run keeps most

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
class Checked:
    """One usable sample, checked against the facts of its files (no pixels kept)."""

    sample: Any  # the sample, as checking completed it (detection: boxes in pixels)
    files: list[FileRow]  # the files the sample was read from, its image first
    classes: set[str]  # the classes it holds, for the class coverage of given splits
    stratum: str = "images"  # samples of one stratum are split in the same proportions


@dataclass(frozen=True)
class Decoder:
    """How a task reads its samples; three picklable functions.

    ``needs(sample)``: ``(path, fact kind)`` of each file the sample is read from, its image
    first. ``check(sample, facts)``: a :class:`Checked` from those files' facts (in the same
    order), or :class:`~mlcycle.data.skipped.BadSample` with the reason it cannot be used; it
    reads no file. ``load(sample)``: the item the dataset transforms (the resized image, with
    its mask or boxes), decoded from the files.
    """

    needs: Callable[[Any], list[tuple[Path, str]]]
    check: Callable[[Any, list[Facts]], Checked]
    load: Callable[[Any], Any]


@dataclass
class Index:
    """Everything known about the data after reading and checking it."""

    samples: list[Any]
    splits: list[str]
    class_names: list[str]
    category_ids: list[int]
    channels: int
    skipped: list[tuple[str, str]]
    root: Path  # the deepest folder holding every image
    files: list[list[FileRow]]  # per sample, the files it was read from, its image first
    extra_files: list[FileRow]  # files read besides the samples' own (annotations, data.yaml)
    load: Callable[[Any], Any]  # decodes a sample's item (the resized image, mask, boxes)
    keep_items: bool = False  # data.cache_images resolved: items are held in memory once loaded
    layout: str = ""  # the words of the ``layout:`` line
    positions: dict[str, list[int]] = field(default_factory=dict)
    cache: list[Any] | None = None  # each sample's item, once :meth:`load_items` ran

    @property
    def hashes(self) -> list[str]:
        """sha256 of each sample's image file."""
        return [rows[0][1] for rows in self.files]

    @property
    def sizes(self) -> list[int]:
        """Bytes of each sample's image file."""
        return [rows[0][2] for rows in self.files]

    def item(self, position: int) -> Any:
        """The decoded item of sample ``position`` (from memory once loaded there)."""
        if self.cache is not None:
            return self.cache[position]
        return self.load(self.samples[position])

    def load_items(self, workers: int) -> None:
        """Decode every item into memory, on ``workers`` processes, when ``keep_items`` and not
        done yet. A file that changed since it was checked stops the run."""
        if not self.keep_items or self.cache is not None:
            return
        load = partial(load_named, self.load)
        try:
            self.cache = list(parallel_imap(load, self.samples, "loading images", workers))
        except BadSample as exc:
            raise UserError(f"{exc}; the data changed while it was read, run again") from exc


_local = threading.local()


def resizer(height: int, width: int) -> A.Resize:
    """One resize transform per size and thread: making one costs 15 times more than using it."""
    made = _local.__dict__.setdefault("resizers", {})
    if (height, width) not in made:
        made[(height, width)] = resize(height, width)
    return made[(height, width)]


def load_named(load: Callable[[Any], Any], sample: Any) -> Any:
    """``load(sample)``; a :class:`BadSample` names the sample's file."""
    try:
        return load(sample)
    except BadSample as exc:
        raise BadSample(f"'{sample.path}' can no longer be used: {exc}") from exc


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


def _pool(workers: int) -> Executor:
    """Processes (forked: they start in milliseconds with everything imported) where the OS
    forks safely and this process may have children, else threads. Reading small images holds
    the GIL much of the time: on 2 free cores two threads were slower than one, two processes
    1.7x faster (docs/data.md, "The data index cache")."""
    if sys.platform == "linux" and not multiprocessing.current_process().daemon:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(workers)


def parallel_imap(fn: Callable[[T], R], items: Sequence[T], desc: str, workers: int) -> Iterator[R]:
    """``fn(x) for x in items``, in order, on ``workers`` processes (``fn`` and the results
    picklable); in this process when ``workers`` is 1 or the items are few."""
    bar = partial(tqdm, total=len(items), desc=desc, unit="file", leave=False)
    if workers <= 1 or len(items) < MIN_PARALLEL:
        yield from bar(map(fn, items), disable=len(items) < 2000)
        return
    chunk = max(1, min(64, len(items) // (workers * 8)))
    with _pool(workers) as pool:
        yield from bar(pool.map(fn, items, chunksize=chunk), disable=len(items) < 2000)


def use_cache(flag: bool | None, count: int, bytes_each: int) -> bool:
    """``data.cache_images``: true, false, or ``None`` for "when it fits in 1 GiB"."""
    return bool(flag) or (flag is None and count * bytes_each < CACHE_LIMIT_BYTES)


def gather_facts(
    jobs: Iterable[tuple[str, str]], cache: IndexCache | None, workers: int, desc: str
) -> dict[tuple[str, str], Facts]:
    """The facts of each ``(path, kind)``: from the cache where the file is unchanged, else read
    (on ``workers`` processes) and stored for the next run."""
    unique = list(dict.fromkeys(jobs))
    keys: dict[tuple[str, str], Key] = {job: (os.path.abspath(job[0]), job[1]) for job in unique}
    stats: dict[Key, Stat] = {}
    if cache is not None:
        for key in keys.values():
            stat = file_stat(key[0])
            if stat is not None:
                stats[key] = stat
    stored = cache.lookup(stats) if cache is not None else {}
    facts = {job: stored[keys[job]] for job in unique if keys[job] in stored}
    missing = [job for job in unique if job not in facts]
    fresh: list[tuple[Key, Stat, Facts]] = []
    for job, found in zip(missing, parallel_imap(read_job, missing, desc, workers), strict=True):
        facts[job] = found
        key = keys[job]
        if cache is not None and key in stats and "unread" not in found:
            fresh.append((key, stats[key], found))
            if len(fresh) >= STORE_EVERY:
                cache.store(fresh)
                fresh = []
    if cache is not None:
        cache.store(fresh)
    return facts


def check_all(
    decoder: Decoder, samples: list[Any], what: str, cache: IndexCache | None, workers: int
) -> tuple[list[Checked], list[tuple[str, str]]]:
    """The usable samples, and ``(path, reason)`` of the others, in listing order."""
    needs = [[(str(path), kind) for path, kind in decoder.needs(s)] for s in samples]
    facts = gather_facts(
        (job for need in needs for job in need), cache, workers, f"checking {what}"
    )
    kept, skipped = [], []
    for sample, need in zip(samples, needs, strict=True):
        try:
            kept.append(decoder.check(sample, [facts[job] for job in need]))
        except BadSample as exc:
            skipped.append((str(sample.path), str(exc)))
    return kept, skipped


def make_splits(kept: list[Checked], listing: Listing, hp: Any, coverage: str) -> list[str]:
    """The splits of the kept samples: a run's recorded ones (``hp.split_file``), else the
    layout's, the rest drawn (``hp.val_fraction``, ``hp.test_fraction``, ``hp.split_seed``)."""
    if hp.split_file:
        return splits_from_file(hp.split_file, [d.files[0][0] for d in kept])
    samples = [d.sample for d in kept]
    groups, times = (
        column_values(samples, hp, "group_column"),
        column_values(samples, hp, "time_column"),
    )
    if groups is not None or times is not None:
        if listing.given:
            raise UserError(
                f"'{listing.where}' fixes the splits (a split column or split folders) and "
                "data.group_column / data.time_column would split it too; use one"
            )
        return split_by_column([d.files[0][1] for d in kept], groups, times, hp)
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


def column_values(samples: list[Any], hp: Any, key: str) -> list[Any] | None:
    """The value of each sample's manifest or query column named by ``hp.<key>`` (a data
    module's ``group_column`` / ``time_column``); None when unset."""
    name = getattr(hp, key, None)
    if not name:
        return None
    return [(s.meta or {}).get(name) for s in samples]


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
