"""Architectures registered by name, one registry per task. Adding one is a new file with
``@register_model`` (classification: ``(N, num_classes)`` logits), ``@register_segmentation_model``
(``(N, num_classes, H, W)`` logits, or a dict whose ``"out"`` holds them) or
``@register_detection_model`` (a torchvision-style detector; ``num_classes`` counts the
background, label 0). A builder is ``(in_channels, num_classes, **options) -> nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry

Builder = Callable[..., nn.Module]

# One registry per task, because each promises its own output (see the module docstring); a
# plugin registers through the entry-point group named second.
CLASSIFICATION_MODELS: Registry[Builder] = Registry(
    "classification architecture", "model.arch", "mlcycle.models.classification", ["mlcycle.models"]
)
SEGMENTATION_MODELS: Registry[Builder] = Registry(
    "segmentation architecture", "model.arch", "mlcycle.models.segmentation", ["mlcycle.models"]
)
DETECTION_MODELS: Registry[Builder] = Registry(
    "detection architecture", "model.arch", "mlcycle.models.detection", ["mlcycle.models"]
)
register_model = CLASSIFICATION_MODELS.register
register_segmentation_model = SEGMENTATION_MODELS.register
register_detection_model = DETECTION_MODELS.register


def list_models() -> list[str]:
    """The classification architectures."""
    return CLASSIFICATION_MODELS.names()


def build_architecture(
    registry: Registry[Builder],
    name: str,
    in_channels: int,
    num_classes: int,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
    backbone_weights: str | None = None,
) -> nn.Module:
    """Build ``name`` from ``registry``; load ``weights`` (a whole-model state dict) or
    ``backbone_weights`` (a classifier's, into a torchvision backbone) from local files.
    Nothing is ever downloaded."""
    builder = registry.get(name)
    try:
        model = builder(in_channels, num_classes, **(options or {}))
    except TypeError as exc:
        raise UserError(f"model.arch_options {options} do not fit '{name}': {exc}") from exc
    if backbone_weights:
        load_backbone_weights(model, backbone_weights)
    if weights:
        load_weights(model, weights)
    return model


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """Build classification architecture ``name`` (``(N, num_classes)`` logits)."""
    return build_architecture(
        CLASSIFICATION_MODELS, name, in_channels, num_classes, weights, options
    )


def load_weights(model: nn.Module, path: str) -> None:
    """Load a local state dict safely (``weights_only``); layers whose shape differs are skipped.

    The first convolution and the classifier usually differ (other channels or classes): those
    keep their fresh initialization, everything else is taken from the file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"weights file '{path}' does not exist; give a local .pt/.pth state dict")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise UserError(f"weights file '{path}' cannot be read as a state dict: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"weights file '{path}' does not hold a state dict")
    own = model.state_dict()
    usable = {}
    for key, value in state.items():
        if key not in own:
            continue
        if own[key].shape == value.shape:
            usable[key] = value
        elif value.ndim == 4 and own[key].shape[1] == 1 and own[key].shape[::2] == value.shape[::2]:
            usable[key] = value.sum(dim=1, keepdim=True)  # RGB stem onto a grayscale input
    if not usable:
        raise UserError(
            f"weights file '{path}' matches no layer of this model; is it for another architecture?"
        )
    model.load_state_dict(usable, strict=False)


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
