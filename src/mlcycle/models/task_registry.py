"""Registries of segmentation and detection architectures, apart from the classifiers.

The classifier registry (``mlcycle.models.registry``) promises ``(N, num_classes)`` logits;
dense and box models keep their own registries so that promise holds. A builder has the same
signature, ``(in_channels, num_classes, **options) -> nn.Module``:

* segmentation: ``model(x)`` returns ``(N, num_classes, H, W)`` logits, or a dict whose
  ``"out"`` entry holds them (torchvision's segmentation models);
* detection: a torchvision-style detector. ``num_classes`` counts the object classes *plus the
  background* (label 0); ``model(images, targets)`` returns a dict of losses in training mode
  and ``model(images)`` a list of ``{"boxes", "scores", "labels"}`` in eval mode.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcycle.errors import UserError
from mlcycle.models.registry import load_weights

Builder = Callable[..., nn.Module]


class ModelRegistry:
    """Builders by name for one kind of task (``segmentation`` or ``detection``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.builders: dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        def decorator(builder: Builder) -> Builder:
            if name in self.builders:
                raise ValueError(f"{self.kind} model '{name}' is registered twice")
            self.builders[name] = builder
            return builder

        return decorator

    def names(self) -> list[str]:
        return sorted(self.builders)

    def build(
        self,
        name: str,
        in_channels: int,
        num_classes: int,
        weights: str | None = None,
        options: dict[str, Any] | None = None,
        backbone_weights: str | None = None,
    ) -> nn.Module:
        """Build ``name``; load ``weights`` (a whole-model state dict) or ``backbone_weights``
        (a classifier's state dict, e.g. torchvision's ``mobilenet_v3_large``) from local files.
        Nothing is ever downloaded."""
        if name not in self.builders:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"unknown {self.kind} model.arch '{name}'; {hint}available: {', '.join(self.names())}"
            )
        try:
            model = self.builders[name](in_channels, num_classes, **(options or {}))
        except TypeError as exc:
            raise UserError(f"model.arch_options {options} do not fit '{name}': {exc}") from exc
        if backbone_weights:
            load_backbone_weights(model, backbone_weights)
        if weights:
            load_weights(model, weights)
        return model


def load_backbone_weights(model: nn.Module, path: str) -> None:
    """Load a classifier's state dict into ``model.backbone`` (``.body`` for FPN detectors).

    torchvision classifiers keep their layers under ``features.`` (MobileNet) or at the top
    (ResNet); their detection and segmentation backbones drop that prefix.
    """
    target = getattr(model, "backbone", None)
    target = getattr(target, "body", target)
    if not isinstance(target, nn.Module):
        raise UserError(
            f"model.backbone_weights: this architecture has no torchvision backbone; use model.weights for '{path}'"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"backbone weights file '{path}' does not exist; give a local .pt/.pth state dict"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise UserError(
            f"backbone weights file '{path}' cannot be read as a state dict: {exc}"
        ) from exc
    own = target.state_dict()
    usable = {}
    for key, value in state.items():
        key = key.removeprefix("features.")
        if key in own and own[key].shape == value.shape:
            usable[key] = value
    if not usable:
        raise UserError(
            f"backbone weights file '{path}' matches no layer of this backbone; is it for another architecture?"
        )
    target.load_state_dict(usable, strict=False)


SEGMENTATION_MODELS = ModelRegistry("segmentation")
DETECTION_MODELS = ModelRegistry("detection")
register_segmentation_model = SEGMENTATION_MODELS.register
register_detection_model = DETECTION_MODELS.register
