"""Figures people would rather look at than read: curves, confusion matrices, galleries."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` atomically (a reader never sees half a PNG) and close it."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    plt.close(fig)


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Rows are true classes, columns predictions; colour is the row share, text the count."""
    k = len(class_names)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(max(4.0, 0.45 * k + 2), 16)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 40:
        ax.set_xticks(range(k), class_names, rotation=90 if k > 10 else 0)
        ax.set_yticks(range(k), class_names)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    colour = "white" if share[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8, color=colour
                    )
    return fig


def image_grid(
    n: int, max_cols: int, cell: tuple[float, float], top: float
) -> tuple[Figure, np.ndarray]:
    """A grid for ``n`` panels (at least one), ``max_cols`` a row at most, ``cell`` inches
    (width, height) each and ``top`` inches more for the title; every axis off."""
    n = max(1, n)
    cols = min(max_cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(cell[0] * cols, cell[1] * rows + top), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def gallery_figure(images: Sequence[np.ndarray], captions: Sequence[str], title: str) -> Figure:
    """A grid of uint8 HxWxC images, each with a caption."""
    fig, axes = image_grid(len(images), 8, (1.9, 2.1), 0.4)
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        gray = image.shape[-1] == 1
        ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=7)
    if not images:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    return fig


def curves_figure(history: Sequence[dict[str, float]], fallback: Sequence[str] = ()) -> Figure:
    """Loss and error per epoch, train beside val. A task without an error curve (detection)
    gets its ``fallback`` validation metrics (e.g. ``val/map``) in the second panel."""
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))

    def draw(ax: Axes, key: str, style: str, label: str) -> None:
        points = [(r["epoch"], r[key]) for r in history if key in r]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label, markersize=3)

    for ax, name in ((ax_loss, "loss"), (ax_err, "error")):
        for stage, style in (("train", "-o"), ("val", "-s")):
            draw(ax, f"{stage}/{name}", style, stage)
        ax.set(xlabel="epoch", ylabel=name, title=f"{name} per epoch")
    if not ax_err.get_lines() and fallback:
        for key in fallback:
            draw(ax_err, key, "-s", key)
        ax_err.set(ylabel="value", title="validation metrics per epoch")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig
