"""``mlcycle optimize`` for segmentation and detection: image/mask pairs and images with boxes
written into litdata's chunks, as :mod:`mlcycle.data.stream_write` writes classification data.

Each split goes to its own folder of chunks (``OUT/train``, ``OUT/val``, the sealed
``OUT/test``). A segmentation item holds the image's and the mask's file bytes; a detection
item the image's bytes with its checked boxes (``x1, y1, x2, y2`` in the file's pixels), labels
and crowd flags. Beside the chunks: the run records (``data_manifest.csv``, ``splits.csv``,
``skipped_files.csv``) and ``samples.json`` (every sample as the index holds it, so a reader
rebuilds the index without reading a file); :mod:`mlcycle.data.stream_kinds` writes
``stream.json`` last, with the kind and the reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.data.boxes import BoxSample
from mlcycle.data.segmentation import MaskSample
from mlcycle.data.stream_kinds import StreamKind
from mlcycle.data.stream_store import Store
from mlcycle.data.stream_write import checked_bytes, write_image_splits

SAMPLES = "samples.json"


def mask_item(row: tuple[str, str, int, str, str]) -> dict[str, Any]:
    """One segmentation item: the image's and the mask's bytes, the index position."""
    image, mask, position, image_sha, mask_sha = row
    # no paths: litdata would store a string naming an existing file as that file's contents
    return {
        "image": checked_bytes(image, image_sha),
        "mask": checked_bytes(mask, mask_sha),
        "position": position,
        "sha256": image_sha,
    }


def box_item(row: tuple[str, int, str, np.ndarray, np.ndarray, np.ndarray]) -> dict[str, Any]:
    """One detection item: the image's bytes, its boxes in the file's pixels, labels, crowd."""
    path, position, sha256, boxes, labels, crowd = row
    return {
        "image": checked_bytes(path, sha256),
        "boxes": boxes.astype(np.float64),
        "labels": labels.astype(np.int64),
        "crowd": crowd.astype(bool),
        "position": position,
        "sha256": sha256,
    }


def _mask_row(index: Any, position: int) -> tuple:
    sample, files = index.samples[position], index.files[position]
    return (str(sample.image), str(sample.mask), position, files[0][1], files[1][1])


def _box_row(index: Any, position: int) -> tuple:
    sample, files = index.samples[position], index.files[position]
    return (str(sample.path), position, files[0][1], sample.boxes, sample.labels, sample.crowd)


# --- samples.json: each sample as the index holds it ----------------------------------------


def _array(values: Any, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(shape)


def sample_json(sample: Any) -> dict[str, Any]:
    """A MaskSample or a checked BoxSample as JSON (floats kept exactly: repr round-trips)."""
    if isinstance(sample, MaskSample):
        return {"image": str(sample.image), "mask": str(sample.mask), "split": sample.split}
    return {
        "path": str(sample.path),
        "image_id": sample.image_id,
        "boxes": np.asarray(sample.boxes, np.float64).tolist(),
        "labels": np.asarray(sample.labels).tolist(),
        "crowd": np.asarray(sample.crowd).tolist(),
        "areas": None if sample.areas is None else np.asarray(sample.areas).tolist(),
        "size": list(sample.size) if sample.size else None,
        "split": sample.split,
        "label_file": str(sample.label_file) if sample.label_file else None,
        "annotations": sample.annotations,
    }


def sample_from_json(row: dict[str, Any]) -> Any:
    """The sample :func:`sample_json` wrote."""
    if "mask" in row:
        return MaskSample(Path(row["image"]), Path(row["mask"]), row["split"])
    return BoxSample(
        path=Path(row["path"]),
        image_id=row["image_id"],
        boxes=_array(row["boxes"], np.float64, (-1, 4)),
        labels=_array(row["labels"], np.int64, (-1,)),
        crowd=_array(row["crowd"], bool, (-1,)),
        areas=None if row["areas"] is None else np.asarray(row["areas"], np.float64),
        size=tuple(row["size"]) if row["size"] else None,
        split=row["split"],
        label_file=Path(row["label_file"]) if row["label_file"] else None,
        annotations=row["annotations"],
    )


def samples_text(index: Any, items: dict[int, int]) -> str:
    """``samples.json``: per sample its fields, split, files (path, sha256, bytes, what) and
    ``item``, its place in its split's chunks."""
    rows = [
        {
            "sample": sample_json(s),
            "split": split,
            "files": [list(f) for f in files],
            "item": items[p],
        }
        for p, (s, split, files) in enumerate(
            zip(index.samples, index.splits, index.files, strict=True)
        )
    ]
    return json.dumps({"samples": rows}) + "\n"


# --- writing ------------------------------------------------------------------------------------


def _write_dense(
    dm: Any, store: Store, workers: int, chunk_bytes: str, item: Callable, row: Callable
) -> dict[str, Any]:
    record, items = write_image_splits(dm, store, item, row, dm.what, workers, chunk_bytes)
    store.write_text(SAMPLES, samples_text(dm.index, items))
    record["category_ids"] = dm.index.category_ids
    if dm.data_kind == "segmentation":
        record["ignore_index"] = dm.ignore_index
    return record


def write_masks(
    dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB"
) -> dict[str, Any]:
    """Write ``dm`` (a SegmentationData) to ``store``; returns its record."""
    return _write_dense(dm, store, workers, chunk_bytes, mask_item, _mask_row)


def write_boxes(
    dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB"
) -> dict[str, Any]:
    """Write ``dm`` (a DetectionData) to ``store``; returns its record."""
    return _write_dense(dm, store, workers, chunk_bytes, box_item, _box_row)


# the stream kinds (pyproject.toml's mlcycle.stream_kinds entry points)
SEGMENTATION = StreamKind(
    write_masks, "mlcycle.data.stream_dense_data.StreamSegmentationData", "image/mask pairs"
)
DETECTION = StreamKind(write_boxes, "mlcycle.data.stream_dense_data.StreamDetectionData", "images")
