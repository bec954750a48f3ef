"""Figures of the analysis, made without pyplot (no global state), shared by HTML and notebook."""

from __future__ import annotations

import io
import math
from collections import defaultdict

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from mlcycle.data.images import UnreadableImage, load_image
from mlcycle.quality.eda.analysis import EDA
from mlcycle.quality.findings import Item

SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:red"}
SHOWN = 96  # px, longest side of an image shown in a grid


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _picture(path: str) -> np.ndarray:
    try:
        image = load_image(path, 3)
    except UnreadableImage:
        return np.zeros((8, 8, 3), np.uint8)
    img = Image.fromarray(image)
    img.thumbnail((SHOWN, SHOWN), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _grid(rows: int, cols: int, width: float = 1.3) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * cols, width * rows + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def class_balance(eda: EDA) -> Figure:
    names = eda.class_names
    fig = Figure(figsize=(7, max(2.0, 0.3 * len(names) + 1)))
    ax = fig.subplots()
    left = np.zeros(len(names))
    for split, counts in eda.all_counts.items():
        values = np.array([counts.get(n, 0) for n in names])
        ax.barh(names, values, left=left, label=split, color=SPLIT_COLOURS.get(split, "grey"))
        left += values
    ax.invert_yaxis()
    ax.set(xlabel=eda.count_unit, title="class balance (every file, by split)")
    ax.legend(fontsize=8)
    return fig


def sizes(eda: EDA) -> Figure:
    fig = Figure(figsize=(10, 3.4))
    a, b = fig.subplots(1, 2)
    w = np.array([it.facts.width for it in eda.items])
    h = np.array([it.facts.height for it in eda.items])
    for split in eda.splits_read:
        mask = np.array([it.split == split for it in eda.items], dtype=bool)
        if mask.any():
            jitter = np.random.default_rng(0).normal(0, 0.3, (2, int(mask.sum())))
            a.scatter(w[mask] + jitter[0], h[mask] + jitter[1], s=8, alpha=0.5, label=split,
                      color=SPLIT_COLOURS[split])  # fmt: skip
    a.set(xlabel="width px", ylabel="height px", title="image sizes")
    a.legend(fontsize=8)
    if len(w):
        b.hist(np.log2(w / h), bins=30, color="tab:green")
    b.set(xlabel="log2(width / height)", ylabel="images", title="aspect ratio (0 = square)")
    return fig


def pixel_statistics(eda: EDA) -> Figure:
    fig = Figure(figsize=(12, 3.2))
    axes = fig.subplots(1, 3)
    for split in eda.splits_read:
        chosen = [it.facts for it in eda.items if it.split == split]
        if not chosen:
            continue
        kw = {"bins": 30, "alpha": 0.5, "label": split, "color": SPLIT_COLOURS[split]}
        axes[0].hist([f.brightness for f in chosen], **kw)
        axes[1].hist([f.contrast for f in chosen], **kw)
    for c, colour in enumerate(("red", "green", "blue")):
        values = [it.facts.channel_mean[c] for it in eda.items if it.facts.channel_mean]
        axes[2].hist(values, bins=30, alpha=0.4, color=colour, label=colour[0].upper())
    axes[0].set(xlabel="mean gray level (0..255)", title="brightness")
    axes[1].set(xlabel="std of gray levels", title="contrast")
    axes[2].set(xlabel="channel mean (0..1)", title="per-channel mean per image")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def sample_grid(eda: EDA, per_class: int = 8) -> Figure | None:
    if eda.annotations is not None:  # no label per image: annotations.annotated_samples
        return None
    by_class: dict[str, list[Item]] = defaultdict(list)
    for it in sorted(eda.items, key=lambda it: (it.split != "train", it.path)):
        if len(by_class[it.label]) < per_class:
            by_class[it.label].append(it)
    names = sorted(by_class)
    fig, axes = _grid(max(1, len(names)), per_class)
    for r, name in enumerate(names):
        for c, it in enumerate(by_class[name]):
            axes[r, c].imshow(_picture(it.path))
            axes[r, c].set_title(name if c == 0 else "", fontsize=8, loc="left")
    fig.suptitle(f"up to {per_class} images per class", fontsize=9)
    return fig


def embedding(eda: EDA, method: str = "pca") -> Figure | None:
    points = eda.pca if method == "pca" else eda.tsne
    if points is None:
        return None
    index = list(range(len(eda.items))) if method == "pca" else eda.tsne_index
    labels = [eda.items[i].label for i in index]
    names = sorted(set(labels))
    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    cmap = "tab10" if len(names) <= 10 else "tab20"
    for k, name in enumerate(names):
        mask = np.array([lab == name for lab in labels])
        ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.7, label=name or "images",
                   color=_colour(cmap, k))  # fmt: skip
    title = "PCA" if method == "pca" else "t-SNE"
    if method == "pca" and eda.pca_variance:
        title += f" (explained variance {sum(eda.pca_variance):.0%})"
    ax.set(title=f"{title} of 16x16 gray thumbnails, coloured by class", xticks=[], yticks=[])
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    return fig


def _colour(cmap: str, k: int) -> tuple[float, ...]:
    return colormaps[cmap](k % (10 if cmap == "tab10" else 20))


def pairs(eda: EDA, finding: str = "leakage", limit: int = 8) -> Figure | None:
    """Pairs of a finding (leakage, label_conflicts, near_duplicates) side by side."""
    entries = eda.findings.get(finding, [])
    by_path = {it.path: it for it in eda.items}
    shown = []
    for e in entries[:limit]:
        files = e["files"]
        if isinstance(files[0], str):  # near_duplicates list plain paths
            files = [
                {"path": p, "split": by_path[p].split, "label": by_path[p].label} for p in files
            ]
        shown.append((files[0], files[1], e.get("kind", "near"), e.get("distance", 0)))
    if not shown:
        return None
    fig, axes = _grid(len(shown), 2, width=1.9)
    for r, (a, b, kind, distance) in enumerate(shown):
        for c, f in enumerate((a, b)):
            axes[r, c].imshow(_picture(f["path"]))
            axes[r, c].set_title(f"{f['split']} / {f['label']}", fontsize=7)
        axes[r, 0].text(-0.1, 0.5, f"{kind}\nd={distance}", transform=axes[r, 0].transAxes,
                        ha="right", va="center", fontsize=7)  # fmt: skip
    more = f" (first {limit} of {len(entries)})" if len(entries) > limit else ""
    fig.suptitle(finding.replace("_", " ") + more, fontsize=9)
    return fig


def outliers(eda: EDA, limit: int = 16) -> Figure | None:
    found = eda.findings.get("outliers", [])[:limit]
    if not found:
        return None
    cols = min(8, len(found))
    fig, axes = _grid(math.ceil(len(found) / cols), cols)
    for ax, o in zip(axes.flat, found, strict=False):
        ax.imshow(_picture(o["path"]))
        ax.set_title(f"{o['measure']} {o['value']}\nz={o['z']} {o['split']}", fontsize=6)
    fig.suptitle("outliers (robust z-score)", fontsize=9)
    return fig


def attribute_distributions(eda: EDA) -> Figure | None:
    shown = [a for a in eda.attributes if a.kind in ("numeric", "categorical")]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(4 * cols, 2.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[len(shown) :]:
        ax.axis("off")
    for ax, a in zip(axes, shown, strict=False):
        present = [v for v in a.values if v is not None]
        if a.kind == "numeric":
            ax.hist(present, bins=20, color="tab:purple")
        else:
            top = a.summary["top"][:10]
            ax.barh([str(v) for v, _ in top][::-1], [n for _, n in top][::-1], color="tab:purple")
        ax.set_title(f"{a.name} ({a.kind}, {100 * a.missing:.0f}% missing)", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def attribute_correlations(eda: EDA) -> Figure | None:
    corr = eda.attribute_correlations
    assoc = [a for a in eda.attributes if a.label_association is not None]
    if not assoc:
        return None
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    names = corr.get("names", [])
    if len(names) > 1:
        m = np.array([[np.nan if v is None else v for v in row] for row in corr["pearson"]])
        im = a.imshow(m, vmin=-1, vmax=1, cmap="coolwarm")
        a.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
        a.set_yticks(range(len(names)), names, fontsize=7)
        fig.colorbar(im, ax=a, fraction=0.046)
        a.set_title("Pearson correlation (numeric attributes)", fontsize=8)
    else:
        a.axis("off")
    b.barh(
        [x.name for x in assoc][::-1], [x.label_association for x in assoc][::-1], color="tab:olive"
    )
    b.set(xlim=(0, 1), xlabel="0 = unrelated, 1 = determines the class")
    b.tick_params(labelsize=7)
    b.set_title("association with the label (eta / Cramer's V)", fontsize=8)
    return fig
