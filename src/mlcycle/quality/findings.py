"""The checks of ``validate_data.py``: each turns scanned files into a list of findings.

A finding names files by path (and split, label); no finding carries pixels.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcycle.quality.pairs import correlation, near_pairs
from mlcycle.quality.scan import Facts

FILE_PROBLEMS = ("unreadable", "zero_byte", "truncated", "unsupported_mode")
FINDINGS = (
    *FILE_PROBLEMS,
    "too_small",
    "exact_duplicates",
    "near_duplicates",
    "leakage",
    "label_conflicts",
    "small_classes",
    "class_imbalance",
    "outliers",
)
SEALED = {"test": 3, "val": 2, "train": 1, None: 0}  # which copy of a duplicate to keep


@dataclass(frozen=True)
class Thresholds:
    min_size: int = 8  # px; an image narrower or lower than this is too small
    near_distance: int = 6  # max differing bits of two 64-bit dHashes for a near duplicate...
    near_correlation: float = 0.98  # ...whose 16x16 gray thumbnails also correlate this well
    min_per_class: int = 10  # a class with fewer usable images is reported
    max_imbalance: float = 10.0  # largest / smallest class count above this is reported
    outlier_z: float = 3.5  # robust z-score (median, MAD) beyond which a value is an outlier


@dataclass(frozen=True)
class Item:
    """One file as the checks see it."""

    path: str
    label: str
    split: str | None
    facts: Facts


def _ref(item: Item) -> dict[str, Any]:
    return {"path": item.path, "label": item.label, "split": item.split}


def file_problems(items: list[Item]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {name: [] for name in FILE_PROBLEMS}
    for item in items:
        if item.facts.problem:
            found[item.facts.problem].append({**_ref(item), "reason": item.facts.reason})
    return found


def too_small(items: list[Item], min_size: int) -> list[dict]:
    return [
        {**_ref(it), "width": it.facts.width, "height": it.facts.height}
        for it in items
        if it.facts.decoded and min(it.facts.width, it.facts.height) < min_size
    ]


def exact_groups(items: list[Item]) -> list[list[int]]:
    """Indexes of files with identical bytes (zero-byte files are reported on their own)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.facts.sha256 and item.facts.bytes:
            groups[item.facts.sha256].append(i)
    return [g for g in groups.values() if len(g) > 1]


def near_duplicates(
    items: list[Item], max_distance: int, min_correlation: float
) -> list[tuple[int, int, int]]:
    """Pairs of decoded files with different bytes, close dHashes and correlated thumbnails."""
    decoded = [i for i, it in enumerate(items) if it.facts.decoded]
    pairs = near_pairs([items[i].facts.dhash for i in decoded], max_distance)
    out = []
    for a, b, d in pairs:
        fi, fj = items[decoded[a]].facts, items[decoded[b]].facts
        if fi.sha256 == fj.sha256 or fi.thumb is None or fj.thumb is None:
            continue
        if correlation(fi.thumb, fj.thumb) >= min_correlation:
            out.append((decoded[a], decoded[b], d))
    return out


def _pair(items: list[Item], i: int, j: int, kind: str, distance: int) -> dict[str, Any]:
    return {"kind": kind, "distance": distance, "files": [_ref(items[i]), _ref(items[j])]}


def leakage(
    items: list[Item], groups: list[list[int]], near: list[tuple[int, int, int]]
) -> list[dict]:
    """The same (exact) or nearly the same (near) image in two different splits."""
    found = []
    for group in groups:
        by_split: dict[str | None, int] = {}
        for i in group:
            by_split.setdefault(items[i].split, i)
        splits = [s for s in by_split if s is not None]
        for x in range(len(splits)):
            for y in range(x + 1, len(splits)):
                found.append(_pair(items, by_split[splits[x]], by_split[splits[y]], "exact", 0))
    for i, j, d in near:
        a, b = items[i].split, items[j].split
        if a is not None and b is not None and a != b:
            found.append(_pair(items, i, j, "near", d))
    return found


def label_conflicts(
    items: list[Item], groups: list[list[int]], near: list[tuple[int, int, int]]
) -> list[dict]:
    """The same (exact) or nearly the same (near) image under two or more labels."""
    found = []
    for group in groups:
        if len({items[i].label for i in group}) > 1:
            found.append({"kind": "exact", "distance": 0, "files": [_ref(items[i]) for i in group]})
    for i, j, d in near:
        if items[i].label != items[j].label:
            found.append(_pair(items, i, j, "near", d))
    return found


def class_counts(items: list[Item]) -> Counter:
    return Counter(it.label for it in items if it.facts.decoded)


def small_classes(counts: Mapping[str, int], min_per_class: int) -> list[dict]:
    """Classes counted fewer than ``min_per_class`` times (images, or objects for boxes)."""
    return [{"class": name, "count": n} for name, n in sorted(counts.items()) if n < min_per_class]


def class_imbalance(counts: Mapping[str, int], max_ratio: float) -> list[dict]:
    """The largest and the smallest class when their ratio is above ``max_ratio``."""
    counts = Counter(counts)
    if len(counts) < 2:
        return []
    (big, n_big), (small, n_small) = counts.most_common()[0], counts.most_common()[-1]
    ratio = n_big / max(n_small, 1)
    if ratio <= max_ratio:
        return []
    return [
        {
            "largest": big,
            "largest_count": n_big,
            "smallest": small,
            "smallest_count": n_small,
            "ratio": round(ratio, 2),
        }
    ]


def robust_z(values: np.ndarray, reference: np.ndarray, floor: float = 0.0) -> np.ndarray | None:
    """(x - median) / (1.4826 MAD) of the reference; the mean absolute deviation when MAD is 0.

    ``floor`` is the smallest scale, so that a data set of near-identical values does not turn
    differences nobody could see into outliers.
    """
    med = float(np.median(reference))
    dev = np.abs(reference - med)
    scale = 1.4826 * float(np.median(dev))
    if scale == 0:
        scale = 1.2533 * float(dev.mean())
    scale = max(scale, floor)
    if scale == 0:
        return None
    return (values - med) / scale


# name: (value of a file, smallest scale of its robust z-score)
MEASURES = {
    "brightness": (lambda f: f.brightness, 4.0),  # gray levels
    "contrast": (lambda f: f.contrast, 2.0),  # gray levels
    "size": (lambda f: math.log(f.width * f.height), 0.05),  # log pixel count
    "aspect_ratio": (lambda f: math.log(f.width / f.height), 0.02),  # log width/height
}


def outliers(items: list[Item], z_limit: float) -> list[dict]:
    """Brightness, contrast, size (pixel count) and aspect-ratio outliers by robust z-score.

    The median and MAD come from train and val files only, so no statistic of the test split
    shapes the thresholds; test files are checked against them like any other.
    """
    decoded = [it for it in items if it.facts.decoded and it.facts.width and it.facts.height]
    reference = [it for it in decoded if it.split in ("train", "val")] or decoded
    if len(reference) < 8:
        return []
    found = []
    for name, (measure, floor) in MEASURES.items():
        values = np.array([measure(it.facts) for it in decoded])
        z = robust_z(values, np.array([measure(it.facts) for it in reference]), floor)
        if z is None:
            continue
        for it, score in zip(decoded, z, strict=True):
            if abs(score) > z_limit:
                value = _shown(name, it.facts)
                found.append(
                    {**_ref(it), "measure": name, "value": value, "z": round(float(score), 2)}
                )
    return found


def _shown(measure: str, f: Facts) -> float | str:
    if measure == "size":
        return f"{f.width}x{f.height}"
    if measure == "aspect_ratio":
        return round(f.width / f.height, 3)
    return round(float(getattr(f, measure)), 1)


IMAGE_FINDINGS = (
    *FILE_PROBLEMS,
    "too_small",
    "exact_duplicates",
    "near_duplicates",
    "leakage",
    "outliers",
)


def check_images(items: list[Item], t: Thresholds) -> dict[str, list[dict]]:
    """The findings of the images alone (see :data:`IMAGE_FINDINGS`), whatever the task."""
    groups = exact_groups(items)
    near = near_duplicates(items, t.near_distance, t.near_correlation)
    found = file_problems(items)
    found["too_small"] = too_small(items, t.min_size)
    found["exact_duplicates"] = [
        {"sha256": items[g[0]].facts.sha256, "files": [_ref(items[i]) for i in g]} for g in groups
    ]
    found["near_duplicates"] = [_pair(items, i, j, "near", d) for i, j, d in near]
    found["leakage"] = leakage(items, groups, near)
    found["outliers"] = outliers(items, t.outlier_z)
    found["label_conflicts"] = label_conflicts(items, groups, near)
    return found


def check_all(items: list[Item], t: Thresholds) -> dict[str, list[dict]]:
    """Every finding of classification data by name (see :data:`FINDINGS`)."""
    found = check_images(items, t)
    counts = class_counts(items)
    found["small_classes"] = small_classes(counts, t.min_per_class)
    found["class_imbalance"] = class_imbalance(counts, t.max_imbalance)
    return {name: found[name] for name in FINDINGS}
