"""The quality part of images with annotations (segmentation masks, detection boxes), read
through the data module's public index, which checks every image with its annotation as
training does. A kind gives the checks of its annotations (:class:`AnnotationChecks`:
:class:`~mlcycle.images.quality.masks.MaskChecks`, :class:`~mlcycle.images.quality.boxes.BoxChecks`) and
registers ``AnnotationQuality(its checks)`` as its part.

For ``eda.py``, counts per class cover every split (for masks that means reading the test masks,
never the test images); everything else covers the analysed splits only.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from mlcycle.quality.eda.analysis import Annotations, pick
from mlcycle.quality.findings import IMAGE_FINDINGS, Item, Thresholds, check_images
from mlcycle.quality.image_quality import ImageQuality
from mlcycle.quality.scan import Facts, scan
from mlcycle.quality.validate import check_out_folder

UNREADABLE = "image cannot be read"  # how the data modules word a skipped image
SPLIT_ORDER = ["train", "val", "test"]


class AnnotationChecks(Protocol):
    """The checks of one kind of annotation, over rows (one per image) read from the index.
    A kind subclasses it explicitly to share :meth:`__init__`."""

    task: str  # the kind's name in the reports
    unit: str  # what its class counts count
    findings: tuple[str, ...]
    dm: Any
    class_names: list[str]

    def __init__(self, dm: Any) -> None:
        self.dm = dm
        self.class_names = list(dm.class_names)

    def image_path(self, sample: Any) -> Path: ...
    def files(self, sample: Any) -> list[Path]: ...  # the image and its annotation's own files
    def rows(self, positions: list[int], workers: int | None = None) -> list[dict[str, Any]]: ...
    def class_counts(self, rows: list[dict[str, Any]]) -> dict[str, int]: ...
    def check(self, rows: list[dict[str, Any]], t: Thresholds) -> dict[str, list[dict]]: ...
    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]: ...
    def csv_row(self, row: dict[str, Any]) -> dict[str, Any]: ...

    # what eda.py draws (mlcycle.quality.eda.annotations)
    share: tuple[str, str, str]  # the summary's key of class shares, the axis label, the title
    drawn: str  # what annotated images show: "masks", "boxes"

    # the classes of one image; their count per image is drawn on the right of per_image
    def row_classes(self, row: dict[str, Any]) -> list[str]: ...
    def draw_split(self, left: Any, rows: list[dict[str, Any]], style: dict) -> None: ...
    def label_per_image(self, left: Any, right: Any, summary: dict[str, Any]) -> None: ...
    def shapes(self, rows: list[dict[str, Any]]) -> Any: ...  # a Figure, or None
    def draw_annotation(self, ax: Any, row: dict[str, Any], shape: tuple[int, ...]) -> None: ...


def dense_items(
    checks: AnnotationChecks,
    positions: list[int],
    with_skipped: bool = False,
    workers: int | None = None,
    desc: str = "scanning images",
) -> tuple[list[Item], list[Facts]]:
    """The images of the index samples at ``positions`` (and, with ``with_skipped``, the images
    the data module skipped as unreadable, split ``None``), scanned like classification files."""
    index = checks.dm.index
    paths = [str(checks.image_path(index.samples[p])) for p in positions]
    splits: list[str | None] = [index.splits[p] for p in positions]
    if with_skipped:
        broken = [path for path, reason in index.skipped if reason.startswith(UNREADABLE)]
        paths, splits = paths + broken, splits + [None] * len(broken)
    facts = scan(paths, detail=not with_skipped, workers=workers, desc=desc)
    return [Item(p, "", s, f) for p, s, f in zip(paths, splits, facts, strict=True)], facts


def skipped_findings(dm: Any) -> list[dict]:
    """What the data module left out and why (unreadable images are scanned as well)."""
    return [{"path": path, "reason": reason} for path, reason in dm.index.skipped]


class AnnotationQuality(ImageQuality):
    """Images with the annotations that ``checks_type`` checks."""

    def __init__(self, checks_type: type[AnnotationChecks]) -> None:
        self.checks_type = checks_type
        self.task = checks_type.task
        self.unit = self.eda_unit = checks_type.unit

    def scan(self, dm: Any, t: Thresholds, out: Path, workers: int | None) -> dict[str, Any]:
        checks = self.checks_type(dm)
        index = dm.index  # reads and checks every image with its annotation, fixes the splits
        check_out_folder(out, [path for s in index.samples for path in checks.files(s)])
        start = time.perf_counter()
        positions = list(range(len(index.samples)))
        items, _ = dense_items(checks, positions, with_skipped=True, workers=workers)
        seconds = time.perf_counter() - start
        rows = checks.rows(positions, workers)
        found = {k: v for k, v in check_images(items, t).items() if k in IMAGE_FINDINGS}
        found.update(checks.check(rows, t))
        found["skipped"] = skipped_findings(dm)
        return {
            "task": self.task,
            "items": items,
            "seconds": seconds,
            "class_counts": checks.class_counts(rows),
            "class_count_unit": self.unit,
            "findings": found,
            "annotations": checks.summary(rows),
            "rows": [checks.csv_row(r) for r in rows],
        }

    def read(
        self, dm: Any, wanted: set[str], sample: int | None, seed: int, workers: int | None
    ) -> dict[str, Any]:
        checks = self.checks_type(dm)
        index = dm.index
        every = list(range(len(index.samples)))
        all_rows = checks.rows(every, workers)
        all_counts = {
            split: checks.class_counts([r for r in all_rows if r["split"] == split])
            for split in sorted(set(index.splits), key=SPLIT_ORDER.index)
        }
        chosen = [p for p in every if index.splits[p] in wanted]
        picked = pick(chosen, [""] * len(every), sample, seed)
        scanned, _ = dense_items(checks, picked, workers=workers, desc="reading")
        rows = [all_rows[p] for p in picked]
        annotations = Annotations(
            self.task,
            self.unit,
            list(checks.class_names),
            rows,
            checks.summary(rows),
            checks.check(rows, Thresholds()),
            checks,
        )
        paths = [checks.image_path(index.samples[p]) for p in chosen]
        return {
            "all_counts": all_counts,
            "file_types": dict(Counter(p.suffix.lower() or "(none)" for p in paths).most_common()),
            "items": [it for it in scanned if it.facts.decoded],
            "not_decoded": [
                (it.path, it.facts.problem or "unreadable")
                for it in scanned
                if not it.facts.decoded
            ],  # fmt: skip
            "skipped_test": index.splits.count("test") if "test" not in wanted else 0,
            "sampled_out": len(chosen) - len(picked),
            "classes": list(checks.class_names),
            "count_unit": self.unit,
            "task": self.task,
            "annotations": annotations,
        }
