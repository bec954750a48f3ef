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
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_kinds import FORMAT, StreamKind, copy_records, write, write_split
from mlcycle.data.stream_store import Store

__all__ = ["CLASSIFICATION", "FORMAT", "write_images", "write_stream"]
RECORDS = ("data_manifest.csv", "splits.csv", "skipped_files.csv")
write_stream = write  # any kind's data module, through the seam


def chunk_item(row: tuple[str, str, int, str]) -> dict[str, Any]:
    """One item of a chunk: the image file's bytes, its label, index position and sha256."""
    path, label, position, sha256 = row
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"'{path}' changed while it was being written; run again")
    # no path: litdata would store a string naming an existing file as that file's contents
    return {"image": data, "label": label, "position": position, "sha256": sha256}


def write_images(
    dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB"
) -> dict[str, Any]:
    """Write ``dm`` (an image classification data module) to ``store``; returns its record."""
    import litdata

    index = dm.index  # reads and hashes every file once, fixes the splits
    mean, std = dm.normalization
    counts = {}
    for split in SPLITS:
        positions = index.positions[split]
        counts[split] = len(positions)
        if not positions:
            continue
        rows = [
            (str(index.samples[p].path), index.samples[p].label, p, index.hashes[p])
            for p in positions
        ]
        if split == "train":  # litdata shuffles chunks and short runs within them: written in
            random.Random(0).shuffle(rows)  # class order, a batch would hold one or two classes
        print(f"writing {split}: {len(rows)} images to {store.join(split)}", flush=True)
        write_split(store, split, chunk_item, rows, workers, chunk_bytes)
    copy_records(dm, store, RECORDS)
    return {
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


CLASSIFICATION = StreamKind(write_images, "mlcycle.data.stream.StreamImageData", "images")
