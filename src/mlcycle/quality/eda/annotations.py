"""Tables and figures of segmentation masks and detection boxes (analysed splits only).

Each returns ``""`` or ``None`` for classification data, so the report's outline is the same for
every task.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

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
    """Segmentation: the share of pixels of each class; detection: objects per class."""
    a = eda.annotations
    if a is None:
        return None
    fig = Figure(figsize=(7, max(2.0, 0.3 * len(a.class_names) + 1)), layout="constrained")
    ax = fig.subplots()
    if a.task == "segmentation":
        values = [a.summary["class_pixel_share"][n] for n in a.class_names]
        ax.barh(a.class_names, values, color="tab:cyan")
        ax.set(xlabel="share of all pixels", title="class pixel share (analysed masks)")
    else:
        values = [a.summary["objects_per_class"][n] for n in a.class_names]
        ax.barh(a.class_names, values, color="tab:cyan")
        ax.set(xlabel="objects", title="objects per class (analysed images)")
    ax.invert_yaxis()
    return fig


def per_image(eda: EDA) -> Figure | None:
    """Segmentation: mask coverage and classes per image; detection: boxes per image."""
    a = eda.annotations
    if a is None or not a.rows:
        return None
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for split in eda.splits_read:
        rows = [r for r in a.rows if r["split"] == split]
        if not rows:
            continue
        kw = {"alpha": 0.6, "label": split, "color": SPLIT_COLOURS[split]}
        if a.task == "segmentation":
            left.hist([r["coverage"] for r in rows], bins=20, range=(0, 1), **kw)
            counts = [len(r["classes"]) for r in rows]
        else:
            counts = [len(r["labels"]) for r in rows]
        right.hist(counts, bins=np.arange(max(counts) + 2) - 0.5, **kw)
    if a.task == "segmentation":
        left.set(xlabel="share of the mask that is not background", ylabel="images",
                 title="mask coverage")  # fmt: skip
        right.set(xlabel="foreground classes in the image", ylabel="images", title="classes per image")  # fmt: skip
    else:
        left.axis("off")
        left.text(0, 0.5, _box_text(a.summary), fontsize=9, va="center", family="monospace")
        right.set(xlabel="boxes in the image", ylabel="images", title="boxes per image")
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def _box_text(summary: dict) -> str:
    return "\n".join(
        [f"images {summary['images']}", f"objects {summary['objects']}",
         f"without boxes {summary['images_without_boxes']}", f"crowd {summary['crowd']}"]
    )  # fmt: skip


def box_shapes(eda: EDA) -> Figure | None:
    """Detection: box size against aspect ratio, one point per box, coloured by class."""
    a = eda.annotations
    if a is None or a.task != "detection" or not any(r["labels"] for r in a.rows):
        return None
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(a.class_names):
        size = [s for r in a.rows for s, lab in zip(r["size"], r["labels"], strict=True) if lab == name]  # fmt: skip
        aspect = [s for r in a.rows for s, lab in zip(r["aspect"], r["labels"], strict=True) if lab == name]  # fmt: skip
        if size:
            ax.scatter(size, aspect, s=8, alpha=0.6, label=name, color=colormaps["tab10"](k % 10))
    ax.set(xscale="log", yscale="log", xlabel="box size (sqrt of its share of the image area)",
           ylabel="aspect ratio w/h", title="box sizes and aspect ratios")  # fmt: skip
    ax.legend(fontsize=7, markerscale=1.5)
    return fig


def annotated_samples(eda: EDA) -> Figure | None:
    """Up to 16 train images with their mask (overlaid) or boxes (drawn)."""
    a = eda.annotations
    if a is None or not a.rows:
        return None
    rows = sorted(a.rows, key=lambda r: (r["split"] != "train", r["path"]))[:SHOWN]
    cols = min(8, len(rows))
    fig, axes = _grid(math.ceil(len(rows) / cols), cols, width=1.6)
    palette = colormaps["tab10"]
    for ax, r in zip(axes.flat, rows, strict=False):
        image = _image(r["path"])
        ax.imshow(image)
        if a.task == "segmentation":
            ax.imshow(_overlay(r["mask"], image.shape[:2], palette))
        else:
            for box, label in zip(r["boxes"], r["labels"], strict=True):
                colour = palette(a.class_names.index(label) % 10)
                x1, y1, x2, y2 = box
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1, color=colour))
        ax.set_title(f"{r['split']}: {', '.join(sorted(set(r.get('classes') or r.get('labels') or []))) or 'none'}", fontsize=6)  # fmt: skip
    fig.suptitle(f"{len(rows)} images with their {'masks' if a.task == 'segmentation' else 'boxes'}", fontsize=9)  # fmt: skip
    return fig


def _image(path: str) -> np.ndarray:
    try:
        return load_image(path, 3)
    except UnreadableImage:
        return np.zeros((8, 8, 3), np.uint8)


def _overlay(path: str, shape: tuple[int, ...], palette: object) -> np.ndarray:
    """The mask as RGBA: each foreground class in its colour, half transparent."""
    with Image.open(path) as img:
        mask = np.asarray(img).astype(np.int64)
    rgba = np.zeros((*mask.shape, 4))
    for c in np.unique(mask):
        if 0 < c < 255:
            rgba[mask == c] = (*palette(int(c - 1) % 10)[:3], 0.5)
    return rgba if rgba.shape[:2] == tuple(shape) else np.zeros((*shape, 4))
