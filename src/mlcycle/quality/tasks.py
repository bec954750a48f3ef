"""Which checks a data module gets: classification (labels per file) or the annotation checks of
segmentation masks and detection boxes, read through the data module's public index."""

from __future__ import annotations

from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.quality.boxes import BoxChecks
from mlcycle.quality.findings import Item
from mlcycle.quality.masks import MaskChecks
from mlcycle.quality.scan import Facts, scan

# A data module (or subclass), by class path, and the checks of its annotations.
ANNOTATION_CHECKS = {
    "mlcycle.data.segmentation.SegmentationData": MaskChecks,
    "mlcycle.data.detection.DetectionData": BoxChecks,
}
CLASSIFICATION = "mlcycle.data.classification.ImageClassificationData"
UNREADABLE = "image cannot be read"  # how the data modules word a skipped image


def annotation_checks(dm: Any) -> MaskChecks | BoxChecks | None:
    """The annotation checks of ``dm``; ``None`` for classification data. Compared by class path
    along the MRO, so no data module is imported for data of another kind."""
    bases = {f"{c.__module__}.{c.__qualname__}" for c in type(dm).__mro__}
    for class_path, checks in ANNOTATION_CHECKS.items():
        if class_path in bases:
            return checks(dm)
    if CLASSIFICATION in bases:
        return None
    kinds = ", ".join(p.rsplit(".", 1)[-1] for p in (CLASSIFICATION, *ANNOTATION_CHECKS))
    raise UserError(
        f"data.class_path '{type(dm).__module__}.{type(dm).__name__}' is not a data module these "
        f"tools read; they read {kinds} (or subclasses)"
    )


def dense_items(
    checks: MaskChecks | BoxChecks,
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
