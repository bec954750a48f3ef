"""Test-time augmentation by flips (``model.tta``): inference only, training is unchanged.

``tta: flip`` (the same as ``hflip``) or ``tta: [hflip, vflip]``: the network sees the
original image and each flipped copy; the prediction is the mean of their softmax
probabilities. The averaged output is returned as the log of that mean, so it reads like
logits: ``softmax(output)`` is exactly the mean probability, ``argmax`` the averaged choice,
and predict, serve and the monitor need nothing new. A dense output (segmentation) is
flipped back before averaging, so every pixel averages over the same place in the image.

:class:`FlipTTA` wraps a network for export (TorchScript and ONNX hold the flips and the
averaging); :func:`flip_average` is the same computation for a task's ``predict_step``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mlcycle.core.errors import UserError

FLIP_DIMS = {"hflip": -1, "vflip": -2}  # the image axis each flip reverses (NCHW)
ALIASES = {"flip": "hflip"}


def tta_views(value: str | list[str] | None, key: str = "model.tta") -> list[str] | None:
    """``model.tta`` as a list of flips (``["hflip"]``); ``None`` when off. A string may list
    flips with commas (``hflip,vflip``). One line on a value that names no flip."""
    if value is None or value is False or value in ("none", "null", ""):
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    flips = [ALIASES.get(str(n), str(n)) for n in names]
    unknown = [n for n in flips if n not in FLIP_DIMS]
    if unknown or not flips:
        choices = ", ".join(["flip", *FLIP_DIMS])
        raise UserError(f"{key}={value!r} is not a flip; use one of {choices}, a list, or none")
    return list(dict.fromkeys(flips))


def tta_of(task: Any) -> list[str] | None:
    """The flips a loaded task predicts with (its ``tta`` hyperparameter), or ``None``."""
    hparams = getattr(task, "hparams", None) or {}
    return tta_views(hparams.get("tta"))


def takes_tta(task_class: type) -> bool:
    """Whether a task class has the ``tta`` key (classification and segmentation do)."""
    return "tta" in inspect.signature(task_class.__init__).parameters


def set_tta(task: Any, value: str | None) -> None:
    """``--tta`` of evaluate and export: the loaded task predicts with these flips instead of
    its run's ``model.tta`` (``none``: without); ``None`` keeps the run's."""
    if value is None:
        return
    if not takes_tta(type(task)):
        raise UserError(
            f"--tta: a {getattr(task, 'task_name', type(task).__name__)} run has no "
            "test-time augmentation; leave --tta out"
        )
    task.hparams["tta"] = tta_views(value, "--tta")


def mean_probability_logits(outputs: list[torch.Tensor]) -> torch.Tensor:
    """``log(mean(softmax(o) for o in outputs))`` over the class axis (1), computed stably
    (log-sum-exp with the maximum taken out), so its softmax is the mean probability."""
    logp = torch.stack([o.float().log_softmax(dim=1) for o in outputs])
    top = logp.amax(dim=0, keepdim=True)
    return (top + (logp - top).exp().sum(dim=0, keepdim=True).log()).squeeze(0) - math.log(
        len(outputs)
    )


def flip_average(
    net: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    flips: list[str],
    dense: bool = False,
) -> torch.Tensor:
    """``net`` on ``x`` and on each flip of it, averaged as :func:`mean_probability_logits`;
    ``dense``: the outputs are per pixel and are flipped back first."""
    outputs = [net(x)]
    for name in flips:
        dim = FLIP_DIMS[name]
        out = net(x.flip(dim))
        outputs.append(out.flip(dim) if dense else out)
    return mean_probability_logits(outputs)


class FlipTTA(nn.Module):
    """``net`` with flip test-time augmentation, as one traceable module (the export's)."""

    def __init__(self, net: nn.Module, flips: list[str], dense: bool = False) -> None:
        super().__init__()
        self.net = net
        self.flips = list(flips)
        self.dense = dense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flip_average(self.net, x, self.flips, self.dense)


def with_tta(net: nn.Module, task: Any, dense: bool = False) -> nn.Module:
    """``net`` wrapped in :class:`FlipTTA` when ``task`` predicts with ``tta``; else ``net``."""
    flips = tta_of(task)
    return net if flips is None else FlipTTA(net, flips, dense)
