"""The EDA of segmentation and detection data: the images of the analysed splits with their
masks or boxes, read through the data module's index (which checks every pair as training does).

Counts per class cover every split (for masks that means reading the test masks, never the test
images); everything else covers the analysed splits only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mlcycle.quality.findings import Item, Thresholds
from mlcycle.quality.tasks import dense_items


@dataclass
class Annotations:
    """Masks or boxes of the analysed images, for the annotation tables and figures."""

    task: str  # segmentation or detection
    unit: str  # what the class counts count
    class_names: list[str]
    rows: list[dict[str, Any]]  # one per analysed image (see MaskChecks.rows, BoxChecks.rows)
    summary: dict[str, Any]
    findings: dict[str, list[dict]] = field(default_factory=dict)


def read_dense(
    dm: Any,
    checks: Any,
    wanted: set[str],
    sample: int | None,
    seed: int,
    workers: int | None,
) -> dict[str, Any]:
    """The EDA's fields (counts, items, annotations) for a segmentation or detection module."""
    from mlcycle.quality.eda.analysis import pick

    index = dm.index
    every = list(range(len(index.samples)))
    all_rows = checks.rows(every, workers)
    all_counts = {
        split: checks.class_counts([r for r in all_rows if r["split"] == split])
        for split in sorted(set(index.splits), key=["train", "val", "test"].index)
    }
    chosen = [p for p in every if index.splits[p] in wanted]
    picked = pick(chosen, [""] * len(every), sample, seed)
    scanned, _ = dense_items(checks, picked, workers=workers, desc="reading")
    items: list[Item] = [it for it in scanned if it.facts.decoded]
    not_decoded = [(it.path, it.facts.problem or "unreadable") for it in scanned if not it.facts.decoded]  # fmt: skip
    rows = [all_rows[p] for p in picked]
    annotations = Annotations(
        checks.task,
        checks.unit,
        list(checks.class_names),
        rows,
        checks.summary(rows),
        checks.check(rows, Thresholds()),
    )
    paths = [checks.image_path(index.samples[p]) for p in chosen]
    return {
        "all_counts": all_counts,
        "file_types": dict(Counter(p.suffix.lower() or "(none)" for p in paths).most_common()),
        "items": items,
        "not_decoded": not_decoded,
        "skipped_test": index.splits.count("test") if "test" not in wanted else 0,
        "sampled_out": len(chosen) - len(picked),
        "classes": list(checks.class_names),
        "count_unit": checks.unit,
        "task": checks.task,
        "annotations": annotations,
    }
