"""Checks of segmentation masks: coverage and classes per image, empty masks, class counts.

Class index 0 is the background; ``ignore_index`` pixels count for nothing. Masks are read at
their own size (not resized), through PIL: a palette PNG gives its indices, not its colours.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlcycle.data.index import parallel_map
from mlcycle.quality.annotated import AnnotationChecks, AnnotationQuality
from mlcycle.quality.findings import Thresholds, class_imbalance, small_classes


def mask_pixels(path: Path, num_classes: int, ignore_index: int) -> tuple[list[int], int, int]:
    """Pixels per class, ignored pixels and all pixels of one mask."""
    with Image.open(path) as img:
        values = np.asarray(img).ravel()
    counts = np.bincount(values.astype(np.int64), minlength=max(num_classes, ignore_index + 1))
    return counts[:num_classes].tolist(), int(counts[ignore_index]), int(values.size)


class MaskChecks(AnnotationChecks):
    """What validate_data.py and eda.py add for :class:`~mlcycle.data.SegmentationData`."""

    task = "segmentation"
    unit = "images with the class"
    findings = ("empty_masks", "small_classes", "class_imbalance")

    @staticmethod
    def image_path(sample: Any) -> Path:
        return sample.image

    @staticmethod
    def files(sample: Any) -> list[Path]:
        return [sample.image, sample.mask]

    def rows(self, positions: list[int], workers: int | None = None) -> list[dict[str, Any]]:
        """One row per sample at ``positions``: its pixels per class, coverage and classes."""
        index, n = self.dm.index, len(self.class_names)
        ignore = int(self.dm.hparams.ignore_index)

        def row(pos: int) -> dict[str, Any]:
            sample = index.samples[pos]
            pixels, ignored, total = mask_pixels(sample.mask, n, ignore)
            present = [self.class_names[c] for c in range(1, n) if pixels[c]]
            return {
                "path": str(sample.image),
                "mask": str(sample.mask),
                "split": index.splits[pos],
                "coverage": round(sum(pixels[1:]) / max(total, 1), 4),
                "ignored": round(ignored / max(total, 1), 4),
                "classes": present,
                "pixels": pixels,
            }

        return parallel_map(row, positions, "reading masks", workers)

    def class_counts(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Images in which each class has at least one pixel (background included)."""
        counts = Counter({name: 0 for name in self.class_names})
        for r in rows:
            for c, n in enumerate(r["pixels"]):
                counts[self.class_names[c]] += bool(n)
        return dict(counts)

    def check(self, rows: list[dict[str, Any]], t: Thresholds) -> dict[str, list[dict]]:
        counts = self.class_counts(rows)
        foreground = {k: v for k, v in counts.items() if k != self.class_names[0]}
        return {
            "empty_masks": [
                {
                    "path": r["path"],
                    "mask": r["mask"],
                    "split": r["split"],
                    "reason": "only ignored pixels"
                    if r["ignored"] == 1
                    else "only background"
                    if not r["ignored"]
                    else "only background and ignored pixels",
                }
                for r in rows
                if not r["classes"]
            ],
            "small_classes": small_classes(counts, t.min_per_class),
            "class_imbalance": class_imbalance(foreground, t.max_imbalance),
        }

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Class pixel shares, coverage and classes per image, over ``rows``."""
        pixels = np.array([r["pixels"] for r in rows], dtype=np.float64).reshape(
            -1, len(self.class_names)
        )
        share = pixels.sum(0) / max(pixels.sum(), 1)
        coverage = np.array([r["coverage"] for r in rows]) if rows else np.zeros(1)
        return {
            "images": len(rows),
            "class_pixel_share": {n: round(float(s), 4) for n, s in zip(self.class_names, share, strict=True)},
            "images_with_class": self.class_counts(rows),
            "coverage": {
                "min": float(coverage.min()),
                "median": float(np.median(coverage)),
                "max": float(coverage.max()),
            },
            "classes_per_image": dict(sorted(Counter(len(r["classes"]) for r in rows).items())),
            "empty_masks": sum(not r["classes"] for r in rows),
        }  # fmt: skip

    def csv_row(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": r["path"],
            "split": r["split"],
            "mask": r["mask"],
            "coverage": r["coverage"],
            "ignored": r["ignored"],
            "classes": " ".join(r["classes"]),
        }

    # --- what eda.py draws (mlcycle.quality.eda.annotations) -----------------------------------

    share = ("class_pixel_share", "share of all pixels", "class pixel share (analysed masks)")
    drawn = "masks"

    @staticmethod
    def row_classes(r: dict[str, Any]) -> list[str]:
        return r["classes"]

    @staticmethod
    def draw_split(left: Any, rows: list[dict[str, Any]], style: dict) -> None:
        """Mask coverage of one split (left)."""
        left.hist([r["coverage"] for r in rows], bins=20, range=(0, 1), **style)

    @staticmethod
    def label_per_image(left: Any, right: Any, summary: dict[str, Any]) -> None:
        left.set(xlabel="share of the mask that is not background", ylabel="images",
                 title="mask coverage")  # fmt: skip
        right.set(xlabel="foreground classes in the image", ylabel="images", title="classes per image")  # fmt: skip

    @staticmethod
    def shapes(rows: list[dict[str, Any]]) -> None:
        return None  # a mask has no box shapes

    @staticmethod
    def draw_annotation(ax: Any, r: dict[str, Any], shape: tuple[int, ...]) -> None:
        from matplotlib import colormaps

        ax.imshow(overlay(r["mask"], shape, colormaps["tab10"]))


def overlay(path: str, shape: tuple[int, ...], palette: Any) -> np.ndarray:
    """The mask as RGBA: each foreground class in its colour, half transparent."""
    with Image.open(path) as img:
        mask = np.asarray(img).astype(np.int64)
    rgba = np.zeros((*mask.shape, 4))
    for c in np.unique(mask):
        if 0 < c < 255:
            rgba[mask == c] = (*palette(int(c - 1) % 10)[:3], 0.5)
    return rgba if rgba.shape[:2] == tuple(shape) else np.zeros((*shape, 4))


# The quality part of the kind "segmentation" (``mlcycle.data_quality`` entry point).
QUALITY = AnnotationQuality(MaskChecks)
