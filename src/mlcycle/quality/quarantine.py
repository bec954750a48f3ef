"""Which files to leave out of training, and why: the rows of ``quarantine.csv``."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from mlcycle.quality.findings import FILE_PROBLEMS, SEALED, Item

QUARANTINE_COLUMNS = ("path", "reason")


def decide(
    items: list[Item], found: dict[str, list[dict]], outliers: bool = False
) -> dict[str, list[str]]:
    """``{path: [reasons]}``.

    Quarantined: unusable files (unreadable, zero-byte, truncated, unsupported mode), images
    below the minimum size, every copy of an identical file filed under different labels, all
    but one copy of other identical files (the copy in the most sealed split stays: test, then
    val, then train), and the less sealed member of a near-duplicate pair that crosses splits.
    Near duplicates within a split, near label conflicts and outliers are only reported
    (outliers too with ``outliers=True``).
    """
    reasons: dict[str, list[str]] = defaultdict(list)
    for name in FILE_PROBLEMS:
        for entry in found[name]:
            reasons[entry["path"]].append(f"{name}: {entry['reason']}")
    for entry in found["too_small"]:
        reasons[entry["path"]].append(f"too_small: {entry['width']}x{entry['height']}")
    conflicting = {
        tuple(sorted(f["path"] for f in e["files"]))
        for e in found["label_conflicts"]
        if e["kind"] == "exact"
    }
    for group in found["exact_duplicates"]:
        files = group["files"]
        key = tuple(sorted(f["path"] for f in files))
        if key in conflicting:
            labels = ", ".join(sorted({f["label"] for f in files}))
            for f in files:
                reasons[f["path"]].append(f"label_conflict: identical file under labels {labels}")
            continue
        keep = min(files, key=lambda f: (-SEALED[f["split"]], f["path"]))
        for f in files:
            if f is not keep:
                where = "" if f["split"] == keep["split"] else f" in {keep['split']} (leakage)"
                reasons[f["path"]].append(f"exact_duplicate of {keep['path']}{where}")
    for entry in found["leakage"]:
        if entry["kind"] != "near":
            continue
        a, b = entry["files"]
        drop, other = (a, b) if SEALED[a["split"]] < SEALED[b["split"]] else (b, a)
        reasons[drop["path"]].append(
            f"near_duplicate of {other['path']} in {other['split']} (leakage, distance {entry['distance']})"
        )
    if outliers:
        for entry in found["outliers"]:
            reasons[entry["path"]].append(f"outlier: {entry['measure']} z={entry['z']}")
    return dict(reasons)


def write_quarantine(path: Path, reasons: dict[str, list[str]]) -> None:
    """``path,reason`` rows with absolute paths, so training finds them from any folder."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(QUARANTINE_COLUMNS)
        for file in sorted(reasons):
            writer.writerow([str(Path(file).absolute()), "; ".join(reasons[file])])
