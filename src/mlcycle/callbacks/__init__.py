"""Callbacks every training run gets: curves, galleries, diagnosis, a guard on the loss."""

from mlcycle.callbacks.confusion import ConfusionMatrix
from mlcycle.callbacks.finite_loss import FiniteLossGuard, NonFiniteLoss
from mlcycle.callbacks.fit_diagnosis import FitDiagnosis
from mlcycle.callbacks.grad_norm import GradNorm
from mlcycle.callbacks.loss_curves import LossCurves
from mlcycle.callbacks.misclassified import Misclassified

__all__ = [
    "ConfusionMatrix",
    "FiniteLossGuard",
    "FitDiagnosis",
    "GradNorm",
    "LossCurves",
    "Misclassified",
    "NonFiniteLoss",
]
