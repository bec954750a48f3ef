"""``mlcycle optimize``: a classification data module's images written into litdata's chunks
(the ``classification`` kind of :mod:`mlcycle.data.stream_kinds`, read back by
:class:`~mlcycle.data.stream.StreamImageData`).

Each split goes to its own folder of chunks (``OUT/train``, ``OUT/val``, ``OUT/test``): the
sealed test split is apart, and training streams only ``train`` and ``val``. Beside them:
``data_manifest.csv`` and ``splits.csv`` exactly as a run writes them (every file's sha256,
label and split) and ``stream.json`` (the fingerprint, classes, channels, the normalization
measured on the train split, each split's count). Items keep the file's original bytes, so a
streamed image decodes to the very pixels of the file it came from.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_kinds import FORMAT, StreamKind, copy_records, write, write_split
from mlcycle.data.stream_store import Store

__all__ = ["CLASSIFICATION", "FORMAT", "write_images", "write_stream"]
RECORDS = ("data_manifest.csv", "splits.csv", "skipped_files.csv")
write_stream = write  # any kind's data module, through the seam


def checked_bytes(path: str, sha256: str) -> bytes:
    """A file's bytes, as hashed when the index was built."""
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"'{path}' changed while it was being written; run again")
    return data


def chunk_item(row: tuple[str, str, int, str]) -> dict[str, Any]:
    """One item of a chunk: the image file's bytes, its label, index position and sha256."""
    path, label, position, sha256 = row
    # no path: litdata would store a string naming an existing file as that file's contents
    return {
        "image": checked_bytes(path, sha256),
        "label": label,
        "position": position,
        "sha256": sha256,
    }


def _image_row(index: Any, position: int) -> tuple[str, str, int, str]:
    sample = index.samples[position]
    return (str(sample.path), sample.label, position, index.hashes[position])


def write_image_splits(
    dm: Any, store: Store, item: Callable, row: Callable, unit: str, workers: int, chunk_bytes: str
) -> tuple[dict[str, Any], dict[int, int]]:
    """Write the splits of an image data module ``dm`` (``item(row(index, position))`` an
    item) and its records; returns the stream's record and each position's place in its
    split's chunks."""
    import litdata

    index = dm.index  # reads and hashes every file once, fixes the splits
    mean, std = dm.normalization
    counts, items = {}, {}
    for split in SPLITS:
        positions = list(index.positions[split])
        counts[split] = len(positions)
        if not positions:
            continue
        if split == "train":  # litdata shuffles chunks and short runs within them: written in
            random.Random(0).shuffle(positions)  # class order, a batch would hold one class
        items.update((p, i) for i, p in enumerate(positions))
        rows = [row(index, p) for p in positions]
        print(f"writing {split}: {len(rows)} {unit} to {store.join(split)}", flush=True)
        write_split(store, split, item, rows, workers, chunk_bytes)
    copy_records(dm, store, RECORDS)
    record = {
        "fingerprint": dm.fingerprint,
        "class_names": index.class_names,
        "channels": index.channels,
        "image_size": list(dm.image_size),
        "mean": mean,
        "std": std,
        "root": str(index.root),
        "layout": index.layout,
        "source": dm.hparams.source,
        "split_counts": counts,
        "streamed": ["train", "val"],
        "sealed": "test",
        "litdata": litdata.__version__,
    }
    return record, items


def write_images(
    dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB"
) -> dict[str, Any]:
    """Write ``dm`` (an image classification data module) to ``store``; returns its record."""
    return write_image_splits(dm, store, chunk_item, _image_row, "images", workers, chunk_bytes)[0]


CLASSIFICATION = StreamKind(write_images, "mlcycle.data.stream.StreamImageData", "images")
