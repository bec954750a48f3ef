"""Tables and figures of the annotations of images (analysed splits only): the outline is the
same for every kind with annotations, and what differs is drawn by the kind's checks
(:class:`~mlcycle.quality.annotated.AnnotationChecks`: ``share``, ``draw_split``,
``label_per_image``, ``shapes``, ``draw_annotation``).

Each returns ``""`` or ``None`` for data without annotations, so the report's outline is the same
for every kind.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from mlcycle.data.images import UnreadableImage, load_image
from mlcycle.quality.eda.analysis import EDA
from mlcycle.quality.eda.figures import SPLIT_COLOURS, _grid
from mlcycle.quality.eda.tables import LIST_LIMIT, table

SHOWN = 16  # annotated images in the sample grid


def summary(eda: EDA) -> str:
    """The annotation summary and the findings about masks or boxes, with the first files."""
    a = eda.annotations
    if a is None:
        return ""
    rows = [(k.replace("_", " "), _short(v)) for k, v in a.summary.items()]
    out = table(("", ""), rows, f"{a.task}: analysed images ({', '.join(eda.splits_read)})")
    counts = [(k.replace("_", " "), len(v)) for k, v in a.findings.items()]
    out += table(("finding (analysed images)", "count"), counts)
    for name, entries in a.findings.items():
        listed = [e for e in entries if "path" in e][:LIST_LIMIT]
        if listed:
            keys = [k for k in listed[0] if k != "mask"]
            more = f" (first {LIST_LIMIT} of {len(entries)})" if len(entries) > LIST_LIMIT else ""
            out += table(
                keys, [[e[k] for k in keys] for e in listed], name.replace("_", " ") + more
            )
    return out


def _short(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def class_share(eda: EDA) -> Figure | None:
    """The kind's share of each class: of the pixels (masks) or of the objects (boxes)."""
    a = eda.annotations
    if a is None:
        return None
    fig = Figure(figsize=(7, max(2.0, 0.3 * len(a.class_names) + 1)), layout="constrained")
    ax = fig.subplots()
    key, xlabel, title = a.checks.share
    ax.barh(a.class_names, [a.summary[key][n] for n in a.class_names], color="tab:cyan")
    ax.set(xlabel=xlabel, title=title)
    ax.invert_yaxis()
    return fig


def per_image(eda: EDA) -> Figure | None:
    """What each image holds, by split: mask coverage and classes, or boxes per image."""
    a = eda.annotations
    if a is None or not a.rows:
        return None
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for split in eda.splits_read:
        rows = [r for r in a.rows if r["split"] == split]
        if rows:
            style = {"alpha": 0.6, "label": split, "color": SPLIT_COLOURS[split]}
            a.checks.draw_split(left, rows, style)
            counts = [len(a.checks.row_classes(r)) for r in rows]
            right.hist(counts, bins=np.arange(max(counts) + 2) - 0.5, **style)
    a.checks.label_per_image(left, right, a.summary)
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def box_shapes(eda: EDA) -> Figure | None:
    """Detection: box size against aspect ratio, one point per box, coloured by class."""
    a = eda.annotations
    if a is None:
        return None
    return a.checks.shapes(a.rows)


def annotated_samples(eda: EDA) -> Figure | None:
    """Up to 16 train images with their annotation drawn on them (a mask overlaid, boxes)."""
    a = eda.annotations
    if a is None or not a.rows:
        return None
    rows = sorted(a.rows, key=lambda r: (r["split"] != "train", r["path"]))[:SHOWN]
    cols = min(8, len(rows))
    fig, axes = _grid(math.ceil(len(rows) / cols), cols, width=1.6)
    for ax, r in zip(axes.flat, rows, strict=False):
        image = _image(r["path"])
        ax.imshow(image)
        a.checks.draw_annotation(ax, r, image.shape[:2])
        classes = ", ".join(sorted(set(a.checks.row_classes(r)))) or "none"
        ax.set_title(f"{r['split']}: {classes}", fontsize=6)
    fig.suptitle(f"{len(rows)} images with their {a.checks.drawn}", fontsize=9)
    return fig


def _image(path: str) -> np.ndarray:
    try:
        return load_image(path, 3)
    except UnreadableImage:
        return np.zeros((8, 8, 3), np.uint8)
