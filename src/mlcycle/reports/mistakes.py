"""Error analysis on predictions: confusion matrix and the most confident mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Mistake:
    position: int  # sample position in the data index
    true: int
    predicted: int
    confidence: float


def confusion_matrix(probs: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    pred = probs.argmax(dim=1)
    flat = (target * num_classes + pred).cpu().numpy()
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def top_mistakes(
    probs: torch.Tensor, target: torch.Tensor, index: torch.Tensor, limit: int = 24
) -> list[Mistake]:
    """Wrong predictions, most confident first."""
    confidence, pred = probs.max(dim=1)
    wrong = (pred != target).nonzero().flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:limit]
    return [
        Mistake(int(index[i]), int(target[i]), int(pred[i]), float(confidence[i]))
        for i in order.tolist()
    ]
