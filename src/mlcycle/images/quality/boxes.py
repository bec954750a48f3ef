"""Checks of detection boxes: boxes per image, images without boxes, boxes outside the image,
box size and aspect-ratio outliers, objects per class.

Boxes are read from the data module's index in each image's own pixels (not resized, not
clipped); the data module has already skipped images whose boxes lie wholly outside.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.quality.annotated import AnnotationChecks, AnnotationQuality
from mlcycle.quality.findings import Thresholds, class_imbalance, robust_z, small_classes

OUTSIDE = 0.5  # px a box may reach past the image edge before it counts as outside


def box_shapes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Each box's size (square root of its share of the image area) and aspect ratio (w/h)."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    return np.sqrt(w * h / max(width * height, 1)), w / h


class BoxChecks(AnnotationChecks):
    """What validate_data.py and eda.py add for :class:`~mlcycle.data.DetectionData`."""

    task = "detection"
    unit = "objects"
    findings = (
        "images_without_boxes",
        "boxes_outside",
        "box_outliers",
        "small_classes",
        "class_imbalance",
    )

    @staticmethod
    def image_path(sample: Any) -> Path:
        return sample.path

    @staticmethod
    def files(sample: Any) -> list[Path]:
        return [sample.path]  # boxes: from one annotation file or one label file per image

    def rows(self, positions: list[int], workers: int | None = None) -> list[dict[str, Any]]:
        """One row per sample at ``positions``: size, boxes, classes, box sizes and aspects."""
        index, out = self.dm.index, []
        for pos in positions:
            s = index.samples[pos]
            width, height = s.size or (0, 0)
            size, aspect = box_shapes(s.boxes.reshape(-1, 4), width, height)
            out.append(
                {
                    "path": str(s.path),
                    "split": index.splits[pos],
                    "width": width,
                    "height": height,
                    "boxes": s.boxes.reshape(-1, 4).round(2).tolist(),
                    "labels": [self.class_names[int(c)] for c in s.labels],
                    "crowd": int(np.asarray(s.crowd).sum()),
                    "size": size.round(4).tolist(),
                    "aspect": aspect.round(4).tolist(),
                }
            )
        return out

    def class_counts(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        counts = Counter({name: 0 for name in self.class_names})
        counts.update(label for r in rows for label in r["labels"])
        return dict(counts)

    def check(self, rows: list[dict[str, Any]], t: Thresholds) -> dict[str, list[dict]]:
        counts = self.class_counts(rows)
        return {
            "images_without_boxes": [
                {"path": r["path"], "split": r["split"]} for r in rows if not r["labels"]
            ],
            "boxes_outside": outside(rows),
            "box_outliers": box_outliers(rows, t.outlier_z),
            "small_classes": small_classes(counts, t.min_per_class),
            "class_imbalance": class_imbalance(counts, t.max_imbalance),
        }

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        per_image = [len(r["labels"]) for r in rows]
        size = np.array([v for r in rows for v in r["size"]] or [math.nan])
        aspect = np.array([v for r in rows for v in r["aspect"]] or [math.nan])
        return {
            "images": len(rows),
            "objects": int(sum(per_image)),
            "crowd": int(sum(r["crowd"] for r in rows)),
            "objects_per_class": self.class_counts(rows),
            "boxes_per_image": dict(sorted(Counter(per_image).items())),
            "images_without_boxes": sum(n == 0 for n in per_image),
            "box_size": _quantiles(size),
            "box_aspect_ratio": _quantiles(aspect),
        }

    def csv_row(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": r["path"],
            "split": r["split"],
            "width": r["width"],
            "height": r["height"],
            "boxes": len(r["labels"]),
            "classes": " ".join(sorted(set(r["labels"]))),
        }

    # --- what eda.py draws (mlcycle.quality.eda.annotations) -----------------------------------

    share = ("objects_per_class", "objects", "objects per class (analysed images)")
    drawn = "boxes"

    @staticmethod
    def row_classes(r: dict[str, Any]) -> list[str]:
        return r["labels"]

    @staticmethod
    def draw_split(left: Any, rows: list[dict[str, Any]], style: dict) -> None:
        """Nothing on the left: label_per_image writes the counts there."""

    @staticmethod
    def label_per_image(left: Any, right: Any, summary: dict[str, Any]) -> None:
        left.axis("off")
        text = "\n".join(
            [f"images {summary['images']}", f"objects {summary['objects']}",
             f"without boxes {summary['images_without_boxes']}", f"crowd {summary['crowd']}"]
        )  # fmt: skip
        left.text(0, 0.5, text, fontsize=9, va="center", family="monospace")
        right.set(xlabel="boxes in the image", ylabel="images", title="boxes per image")

    def shapes(self, rows: list[dict[str, Any]]) -> Any:
        """Box size against aspect ratio, one point per box, coloured by class."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        if not any(r["labels"] for r in rows):
            return None
        fig = Figure(figsize=(6.5, 4.5), layout="constrained")
        ax = fig.subplots()
        for k, name in enumerate(self.class_names):
            size = [s for r in rows for s, lab in zip(r["size"], r["labels"], strict=True) if lab == name]  # fmt: skip
            aspect = [s for r in rows for s, lab in zip(r["aspect"], r["labels"], strict=True) if lab == name]  # fmt: skip
            if size:
                ax.scatter(
                    size, aspect, s=8, alpha=0.6, label=name, color=colormaps["tab10"](k % 10)
                )
        ax.set(xscale="log", yscale="log", xlabel="box size (sqrt of its share of the image area)",
               ylabel="aspect ratio w/h", title="box sizes and aspect ratios")  # fmt: skip
        ax.legend(fontsize=7, markerscale=1.5)
        return fig

    def draw_annotation(self, ax: Any, r: dict[str, Any], shape: tuple[int, ...]) -> None:
        from matplotlib import colormaps
        from matplotlib.patches import Rectangle

        for box, label in zip(r["boxes"], r["labels"], strict=True):
            colour = colormaps["tab10"](self.class_names.index(label) % 10)
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1, color=colour))


def _quantiles(values: np.ndarray) -> dict[str, float]:
    q = (
        np.nanpercentile(values, [0, 5, 50, 95, 100])
        if np.isfinite(values).any()
        else [math.nan] * 5
    )
    return {k: round(float(v), 4) for k, v in zip(("min", "p5", "median", "p95", "max"), q, strict=True)}  # fmt: skip


def outside(rows: list[dict[str, Any]]) -> list[dict]:
    """Boxes that reach past the image edge (training clips them to the image)."""
    found = []
    for r in rows:
        for box, label in zip(r["boxes"], r["labels"], strict=True):
            x1, y1, x2, y2 = box
            if min(x1, y1) < -OUTSIDE or x2 > r["width"] + OUTSIDE or y2 > r["height"] + OUTSIDE:
                found.append({"path": r["path"], "split": r["split"], "box": box, "class": label,
                              "image_size": f"{r['width']}x{r['height']}"})  # fmt: skip
    return found


def box_outliers(rows: list[dict[str, Any]], z_limit: float) -> list[dict]:
    """Boxes whose size or aspect ratio is an outlier by robust z-score of its logarithm.

    The median and MAD come from train and val boxes only, as for the image outliers.
    """
    boxes = [(r, k) for r in rows for k in range(len(r["labels"]))]
    reference = [(r, k) for r, k in boxes if r["split"] in ("train", "val")] or boxes
    if len(reference) < 8:
        return []
    found = []
    for measure, floor in (("size", 0.05), ("aspect", 0.05)):
        values = np.log([r[measure][k] for r, k in boxes])
        z = robust_z(values, np.log([r[measure][k] for r, k in reference]), floor)
        if z is None:
            continue
        for (r, k), score in zip(boxes, z, strict=True):
            if abs(score) > z_limit:
                found.append({"path": r["path"], "split": r["split"], "box": r["boxes"][k],
                              "class": r["labels"][k], "measure": measure,
                              "value": r[measure][k], "z": round(float(score), 2)})  # fmt: skip
    return found


# The quality part of the kind "detection" (``mlcycle.data_quality`` entry point).
QUALITY = AnnotationQuality(BoxChecks)
