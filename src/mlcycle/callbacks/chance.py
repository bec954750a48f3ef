"""The score a model gets without learning anything: the floors of the common metrics.

Each task answers ``chance_level(datamodule)`` (``mlcycle.tasks.base.Task``) in its own file,
from what its data module counts and the formulas here, through :func:`chance_or_none`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def chance_or_none(find: Callable[[Any], Chance | None], datamodule: Any) -> Chance | None:
    """``find(datamodule)``, a task's floor, or ``None`` when unknown: no data module, one
    without what ``find`` counts, or a baseline that is not finite (the chance rule is then
    skipped)."""
    if datamodule is None:
        return None
    try:
        chance = find(datamodule)
    except (AttributeError, KeyError, TypeError):  # a data module without counts
        return None
    if chance is not None and not all(math.isfinite(v) for v in chance.baselines.values()):
        return None
    return chance
