"""The score a model gets without learning anything, per monitored metric.

A task's ``chance_level(datamodule)`` (``mlcycle.tasks.base.Task``) finds its floor here by the
name of the metric it monitors (``CHANCE``); a task with a metric of its own overrides it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MASK_SAMPLE = 256  # training masks read to count the pixels of each class


@dataclass
class Chance:
    """The floor of ``metric``: the best of ``baselines`` (name: score of a model that learned
    nothing). ``loss`` is the cross-entropy of predicting every class as equally likely
    (ln K, whatever the class weights or label smoothing; an untrained model starts about
    there), when the task's loss is a cross-entropy; ``gallery`` is the run's picture of the
    worst validation examples."""

    metric: str
    baselines: dict[str, float]
    loss: float | None = None
    gallery: str = "the galleries in the run directory"
    value: float = field(init=False)

    def __post_init__(self) -> None:
        self.value = max(self.baselines.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {v:.4f}" for name, v in self.baselines.items())
        return f"chance {self.value:.4f} ({parts})"


def frequencies(counts: Sequence[float]) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return counts / max(counts.sum(), 1.0)


def uniform_loss(counts: Sequence[float]) -> float:
    """Cross-entropy (nats) of predicting all ``len(counts)`` classes as equally likely."""
    return math.log(len(counts))


def classification_f1(counts: Sequence[float]) -> dict[str, float]:
    """Macro F1 of always predicting the majority class (its F1 is 2q/(1+q), every other
    class scores 0), and of guessing uniformly at random (per class 2q(1/K)/(q+1/K); 1/K
    when balanced)."""
    q = frequencies(counts)
    k = len(q)
    top = float(q.max())
    uniform = float(np.mean([2 * p / k / (p + 1 / k) for p in q]))
    return {"majority class": 2 * top / (1 + top) / k, f"uniform guess (1/{k})": uniform}


def classification_acc(counts: Sequence[float]) -> dict[str, float]:
    q = frequencies(counts)
    return {"majority class": float(q.max()), f"uniform guess (1/{len(q)})": 1 / len(q)}


def segmentation_iou(counts: Sequence[float]) -> dict[str, float]:
    """Mean IoU over the classes present: the majority class everywhere (its IoU is its pixel
    share, every other class 0), and a uniform guess per pixel (q/K over q + 1/K - q/K)."""
    q = frequencies(counts)
    present = q[q > 0]
    k = len(q)
    uniform = float(np.mean([(p / k) / (p + 1 / k - p / k) for p in present]))
    return {"majority class everywhere": float(q.max()) / len(present), "uniform guess": uniform}


def class_counts(datamodule: Any) -> list[int] | None:
    counts = getattr(datamodule, "class_counts", None)
    return list(counts) if counts else None


def pixel_counts(datamodule: Any) -> list[int] | None:
    """Pixels per class in (up to ``MASK_SAMPLE``) training masks; ``ignore_index`` left out."""
    counts = getattr(datamodule, "pixel_class_counts", None)
    if counts:
        return list(counts)
    if not hasattr(datamodule, "raw_pair"):
        return None
    k, ignore = datamodule.num_classes, getattr(datamodule, "ignore_index", 255)
    total = np.zeros(k, dtype=np.int64)
    positions = datamodule.index.positions["train"]
    step = max(1, len(positions) // MASK_SAMPLE)
    for p in positions[::step][:MASK_SAMPLE]:
        mask = np.asarray(datamodule.raw_pair(p)[1]).ravel()
        total += np.bincount(mask[(mask != ignore) & (mask < k)], minlength=k)[:k]
    return total.tolist() if total.sum() else None


def _classification(metric: str, score: Callable[[Sequence[float]], dict[str, float]]):
    def chance(datamodule: Any) -> Chance | None:
        counts = class_counts(datamodule)
        if not counts:
            return None
        return Chance(metric, score(counts), uniform_loss(counts), "misclassified.png")

    return chance


def _segmentation(datamodule: Any) -> Chance | None:
    counts = pixel_counts(datamodule)
    if not counts:
        return None
    return Chance("val/iou", segmentation_iou(counts), uniform_loss(counts), "worst_iou.png")


def _detection(metric: str):
    def chance(datamodule: Any) -> Chance:
        return Chance(metric, {"no correct detection": 0.0}, None, "detection_errors.png")

    return chance


CHANCE: dict[str, Callable[[Any], Chance | None]] = {
    "val/f1": _classification("val/f1", classification_f1),
    "val/acc": _classification("val/acc", classification_acc),
    "val/iou": _segmentation,
    "val/map": _detection("val/map"),
    "val/map_50": _detection("val/map_50"),
}


def chance_for_metric(metric: str, datamodule: Any) -> Chance | None:
    """``CHANCE``'s floor for ``metric`` on ``datamodule``; ``None`` when unknown (the chance
    rule is then skipped). ``Task.chance_level`` calls this unless a task overrides it."""
    find = CHANCE.get(metric)
    if find is None or datamodule is None:
        return None
    try:
        chance = find(datamodule)
    except (AttributeError, KeyError, TypeError):  # a data module without counts
        return None
    if chance is not None and not all(math.isfinite(v) for v in chance.baselines.values()):
        return None
    return chance
