"""A binary classifier's decision threshold, chosen on val predictions: the one of least cost
under a cost matrix (a false positive costs ``fp``, a false negative ``fn``), or the one that
reaches a target precision (with the highest recall) or a target recall (with the highest
precision). A row is positive when its positive-class probability is at or above the threshold.

Each candidate threshold lies halfway between two neighbouring distinct val scores, so a score
computed in float32 by the ONNX graph falls on the same side as in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError


@dataclass
class Rule:
    """How to choose: exactly one of ``cost`` (FP, FN), ``precision`` or ``recall``."""

    cost: tuple[float, float] | None = None
    precision: float | None = None
    recall: float | None = None

    def describe(self) -> str:
        if self.cost is not None:
            return f"least cost on val with a false positive costing {self.cost[0]:g} and a false negative {self.cost[1]:g}"  # fmt: skip
        if self.precision is not None:
            return f"precision at least {self.precision:g} on val, with the highest recall"
        return f"recall at least {self.recall:g} on val, with the highest precision"


def sweep(scores: np.ndarray, positive: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate threshold (ascending, from below the lowest score to above the highest)
    with its true and false positives on val."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    distinct = np.unique(scores)
    cuts = np.concatenate([[distinct[0] / 2], (distinct[:-1] + distinct[1:]) / 2])
    cuts = np.concatenate([cuts, [(distinct[-1] + 1.0) / 2 if distinct[-1] < 1 else 1.0 + 1e-9]])
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    tp = len(pos) - np.searchsorted(pos, cuts, side="left")
    fp = len(neg) - np.searchsorted(neg, cuts, side="left")
    return {"threshold": cuts, "tp": tp, "fp": fp, "positives": np.asarray(len(pos))}


def _rates(found: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    tp, fp, positives = found["tp"], found["fp"], int(found["positives"])
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    recall = tp / max(positives, 1)
    return precision, recall


def choose_threshold(scores: np.ndarray, positive: np.ndarray, rule: Rule) -> dict[str, Any]:
    """The threshold ``rule`` picks on val scores (the positive class's probabilities) and what
    it gives there; a target that cannot be reached is a UserError naming the best reachable."""
    if not np.asarray(positive, dtype=bool).any() or np.asarray(positive, dtype=bool).all():
        raise UserError("a decision threshold needs both classes among the val predictions")
    found = sweep(scores, positive)
    precision, recall = _rates(found)
    if rule.cost is not None:
        fn = int(found["positives"]) - found["tp"]
        cost = rule.cost[0] * found["fp"] + rule.cost[1] * fn
        at = int(np.argmin(cost))  # lowest threshold of least cost
    elif rule.precision is not None:
        ok = (precision >= rule.precision) & (found["tp"] > 0)
        if not ok.any():
            best = float(precision[found["tp"] > 0].max())
            raise UserError(
                f"--target_precision {rule.precision:g} cannot be reached on val: the best "
                f"reachable precision is {best:.4f}; ask for at most that"
            )
        at = int(np.flatnonzero(ok)[np.argmax(recall[ok])])  # lowest such: highest recall
    else:
        ok = recall >= float(rule.recall or 0)
        at = int(np.flatnonzero(ok)[np.argmax(precision[ok])])
    tp, fp = int(found["tp"][at]), int(found["fp"][at])
    fn = int(found["positives"]) - tp
    return {
        "threshold": float(found["threshold"][at]),
        "rule": rule.describe(),
        "val": {
            "samples": int(len(np.asarray(scores))),
            "precision": round(float(precision[at]), 6),
            "recall": round(float(recall[at]), 6),
            "false_positives": fp,
            "false_negatives": fn,
            **({"cost": float(rule.cost[0] * fp + rule.cost[1] * fn)} if rule.cost else {}),
        },
    }
