"""Mixup and CutMix of the training batch (``model.mixup``, ``model.cutmix``, ``model.mix_prob``).

The values are the alphas of the Beta distribution the mixing weight is drawn from
(``mixup: 0.2``, ``cutmix: 1.0``, as in timm and torchvision). With both set, each batch gets
one or the other, half the time each; ``mix_prob`` is the chance that a batch is mixed at
all. torchvision's ``transforms.v2.MixUp`` and ``CutMix`` do the mixing, on the batch's
device; the targets become class probabilities (a batch left unmixed gets one-hot ones), which
cross-entropy takes as they are, label smoothing and class weights included. Validation,
evaluation and export never mix.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from mlcycle.core.errors import UserError


def check_mixing(mixup: float | None, cutmix: float | None, mix_prob: float) -> None:
    """Fail on a bad mixing key before any data is read."""
    for key, alpha in (("mixup", mixup), ("cutmix", cutmix)):
        if alpha is not None and not alpha > 0:
            raise UserError(
                f"model.{key}={alpha} must be a Beta alpha above 0 (e.g. 0.2 or 1.0), or null"
            )
    if not 0 < mix_prob <= 1:
        raise UserError(f"model.mix_prob={mix_prob} must be in (0, 1]")


class BatchMix:
    """Mixes an ``(images, class indices)`` batch into ``(images, class probabilities)``."""

    def __init__(
        self, num_classes: int, mixup: float | None, cutmix: float | None, prob: float = 1.0
    ) -> None:
        self.num_classes = num_classes
        self.prob = prob
        self.choices: list[v2.Transform] = []
        if mixup:
            self.choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
        if cutmix:
            self.choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))

    def __bool__(self) -> bool:
        return bool(self.choices)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prob < 1 and float(torch.rand(())) >= self.prob:
            return x, F.one_hot(y, self.num_classes).float()
        pick = int(torch.randint(len(self.choices), ())) if len(self.choices) > 1 else 0
        return self.choices[pick](x, y)
