"""Galleries of segmentation and detection errors: masks side by side, boxes in three colours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from mlcycle.reports.figures import image_grid, plt  # pyplot with the Agg backend

IGNORED_COLOUR = (255, 255, 255)
CORRECT, FALSE_POSITIVE, MISSED = "#2ca02c", "#d62728", "#ffbf00"


def palette(num_classes: int) -> np.ndarray:
    """Pascal VOC's colour map (class 0 black), one RGB row per class."""
    colours = np.zeros((max(num_classes, 1), 3), np.uint8)
    for k in range(num_classes):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours[k] = (r, g, b)
    return colours


def colour_mask(mask: np.ndarray, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """An HxW class-index mask as an HxWx3 image; ignored pixels white."""
    table = palette(num_classes)
    out = table[np.clip(mask, 0, num_classes - 1)]
    if ignore_index is not None:
        out[mask == ignore_index] = IGNORED_COLOUR
    return out


def _show(ax, image: np.ndarray) -> None:
    gray = image.ndim == 3 and image.shape[-1] == 1
    ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def mask_gallery_figure(
    images: Sequence[np.ndarray],
    true_masks: Sequence[np.ndarray],
    pred_masks: Sequence[np.ndarray],
    captions: Sequence[str],
    class_names: Sequence[str],
    title: str,
    ignore_index: int | None = 255,
) -> Figure:
    """Per example: the image, the true mask and the predicted mask; two examples a row."""
    n, k = max(1, len(images)), len(class_names)
    per_row = 2 if n > 1 else 1
    rows = int(np.ceil(n / per_row))
    fig, axes = plt.subplots(
        rows, 3 * per_row, figsize=(1.7 * 3 * per_row, 2.2 * rows + 0.8), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, (image, true, pred, caption) in enumerate(
        zip(images, true_masks, pred_masks, captions, strict=True)
    ):
        r, c = divmod(i, per_row)
        panels = (image, colour_mask(true, k, ignore_index), colour_mask(pred, k, ignore_index))
        for j, (panel, name) in enumerate(zip(panels, ("image", "true", "predicted"), strict=True)):
            ax = axes[r, 3 * c + j]
            ax.axis("on")
            _show(ax, panel)
            ax.set_title(f"{caption}\n{name}" if j == 0 else name, fontsize=7)
    if not images:
        axes.flat[0].text(0.5, 0.5, "no images", ha="center", va="center")
    colours = palette(k) / 255
    handles = [Patch(color=colours[i], label=name) for i, name in enumerate(class_names[:20])]
    if ignore_index is not None:
        handles.append(Patch(facecolor="white", edgecolor="gray", label="ignored"))
    fig.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return fig


@dataclass
class BoxPanel:
    """One image of the detection gallery, boxes ``x1, y1, x2, y2`` in its pixels."""

    image: np.ndarray
    correct: list[tuple[list[float], str]]  # (box, caption)
    false_positives: list[tuple[list[float], str]]
    missed: list[tuple[list[float], str]]
    caption: str


def _draw(ax, box: Sequence[float], colour: str, text: str, dashed: bool = False) -> None:
    x1, y1, x2, y2 = box
    ax.add_patch(
        Rectangle(
            (x1 - 0.5, y1 - 0.5),
            x2 - x1,
            y2 - y1,
            fill=False,
            edgecolor=colour,
            linewidth=1.2,
            linestyle="--" if dashed else "-",
        )
    )
    if text:
        ax.text(x1, y1 - 1, text, color=colour, fontsize=5, va="bottom", clip_on=True)


def box_gallery_figure(panels: Sequence[BoxPanel], title: str) -> Figure:
    """Images with correct detections (green), false positives (red) and missed objects
    (yellow, dashed)."""
    fig, axes = image_grid(len(panels), 4, (2.6, 3.1), 0.6)
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.axis("on")
        _show(ax, panel.image)
        for box, text in panel.missed:
            _draw(ax, box, MISSED, text, dashed=True)
        for box, text in panel.correct:
            _draw(ax, box, CORRECT, text)
        for box, text in panel.false_positives:
            _draw(ax, box, FALSE_POSITIVE, text)
        ax.set_title(panel.caption, fontsize=7)
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    handles = [
        Line2D([], [], color=CORRECT, label="correct"),
        Line2D([], [], color=FALSE_POSITIVE, label="false positive"),
        Line2D([], [], color=MISSED, linestyle="--", label="missed object"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig
