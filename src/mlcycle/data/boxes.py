"""Labelled boxes of one image, shared by the COCO and YOLO readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class BoxSample:
    """One image and its objects.

    ``boxes`` are ``[x1, y1, x2, y2]`` in the image's own pixels (or, while ``normalized``,
    YOLO's 0..1 ``[cx, cy, w, h]`` until the image size is known); ``labels`` are class indices
    from 0. ``crowd`` marks COCO crowd regions: not trained on, ignored by the metric as COCO
    does. ``size`` is ``(width, height)`` as the annotation file states it, when it does.
    """

    path: Path
    image_id: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    crowd: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))
    areas: np.ndarray | None = None
    size: tuple[int, int] | None = None
    split: str | None = None
    label_file: Path | None = None
    normalized: bool = False
    problem: str | None = None  # set by a reader: the sample is skipped with this reason
    annotations: str | None = None  # the file its boxes come from, for messages


def to_pixels(sample: BoxSample, width: int, height: int) -> np.ndarray:
    """The sample's boxes as ``[x1, y1, x2, y2]`` pixels of a ``width`` x ``height`` image."""
    if not sample.normalized:
        return sample.boxes.astype(np.float64)
    cx, cy, w, h = sample.boxes.T
    return np.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
        axis=1,
    ).reshape(-1, 4)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = boxes.copy()
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out
