"""``mlcycle optimize``: a classification data module's images written into litdata's chunks.

Each split goes to its own folder of chunks (``OUT/train``, ``OUT/val``, ``OUT/test``): the
sealed test split is apart, and training streams only ``train`` and ``val``. Beside them:
``data_manifest.csv`` and ``splits.csv`` exactly as a run writes them (every file's sha256,
label and split) and ``stream.json`` (the fingerprint, classes, channels, the normalization
measured on the train split, each split's count). Items keep the file's original bytes, so a
streamed image decodes to the very pixels of the file it came from.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_store import Store

FORMAT = "mlcycle-stream"
RECORDS = ("data_manifest.csv", "splits.csv", "skipped_files.csv")


def chunk_item(row: tuple[str, str, int, str]) -> dict[str, Any]:
    """One item of a chunk: the image file's bytes, its label, index position and sha256."""
    path, label, position, sha256 = row
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"'{path}' changed while it was being written; run again")
    # no path: litdata would store a string naming an existing file as that file's contents
    return {"image": data, "label": label, "position": position, "sha256": sha256}


def _write_split(store: Store, rows: list[tuple], split: str, workers: int, chunk: str) -> None:
    import litdata

    litdata.optimize(
        fn=chunk_item,
        inputs=rows,
        output_dir=store.join(split),
        chunk_bytes=chunk,
        num_workers=max(1, min(workers, len(rows))),
        storage_options=store.storage,
        keep_data_ordered=True,
        verbose=False,
        # fork, this process's own default: spawn would import everything again in each worker
        start_method="fork" if sys.platform == "linux" else None,
    )


def write_stream(
    dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB"
) -> dict[str, Any]:
    """Write ``dm`` (an image classification data module) to ``store``; returns stream.json."""
    import litdata

    store.check()
    if store.exists("stream.json"):
        raise UserError(f"'{store.url}' already holds a stream; choose a new --out")
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
        _write_split(store, rows, split, workers, chunk_bytes)
    record = {
        "format": FORMAT,
        "version": 1,
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
    with tempfile.TemporaryDirectory() as tmp:
        dm.write_records(Path(tmp))
        for name in RECORDS:
            store.write_text(name, (Path(tmp) / name).read_text())
    store.write_text("stream.json", json.dumps(record, indent=2) + "\n")  # last: marks it done
    return record
