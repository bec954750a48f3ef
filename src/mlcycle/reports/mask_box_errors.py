"""Error analysis for segmentation and detection: IoU per image, and matching boxes to objects."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from torchvision.ops import box_iou


def image_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> torch.Tensor:
    """Mean IoU of each image (``pred`` and ``target`` are ``(N, H, W)`` class indices), over
    the classes present in its target or its prediction; pixels at ``ignore_index`` count for
    nothing. An image with nothing but ignored pixels scores 1."""
    scores = []
    for p, t in zip(pred, target, strict=True):
        valid = (
            t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
        )
        p, t = p[valid].long(), t[valid].long()
        counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
        confusion = counts.reshape(num_classes, num_classes).double()
        tp = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - tp
        present = union > 0
        scores.append(float((tp[present] / union[present]).mean()) if present.any() else 1.0)
    return torch.tensor(scores)


@dataclass
class BoxErrors:
    """Predictions (at or above a score) matched one-to-one to the objects of one image."""

    correct: list[int] = field(default_factory=list)  # prediction indexes
    false_positives: list[int] = field(default_factory=list)  # prediction indexes
    missed: list[int] = field(default_factory=list)  # object indexes

    @property
    def count(self) -> int:
        return len(self.false_positives) + len(self.missed)


def match_boxes(
    pred: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> BoxErrors:
    """Greedy matching, highest score first, as COCO does: a prediction is correct when it
    overlaps an unmatched object of its class by ``iou_threshold``. Crowd regions are left out."""
    keep = (
        (target["iscrowd"] == 0)
        if "iscrowd" in target
        else torch.ones(len(target["labels"]), dtype=torch.bool)
    )
    objects = keep.nonzero().flatten().tolist()
    order = [
        int(i)
        for i in pred["scores"].argsort(descending=True)
        if pred["scores"][i] >= score_threshold
    ]
    errors = BoxErrors()
    taken: set[int] = set()
    ious = (
        box_iou(pred["boxes"].float(), target["boxes"].float()) if len(order) and objects else None
    )
    for i in order:
        best, best_iou = None, iou_threshold
        for j in objects:
            if j in taken or int(target["labels"][j]) != int(pred["labels"][i]):
                continue
            if ious is not None and float(ious[i, j]) >= best_iou:
                best, best_iou = j, float(ious[i, j])
        if best is None:
            errors.false_positives.append(i)
        else:
            taken.add(best)
            errors.correct.append(i)
    errors.missed = [j for j in objects if j not in taken]
    return errors


class Worst:
    """The ``limit`` items with the highest badness seen so far (ties: the first seen)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heap: list[tuple[float, int, Any]] = []
        self._count = itertools.count()

    def add(self, badness: float, item: Any) -> None:
        entry = (badness, -next(self._count), item)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list[Any]:
        """Worst first."""
        return [e[2] for e in sorted(self._heap, key=lambda e: e[:2], reverse=True)]

    def __len__(self) -> int:
        return len(self._heap)
