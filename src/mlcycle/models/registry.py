"""Architectures registered by name. Adding one is a new file with ``@register_model``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcycle.errors import UserError

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder(in_channels, num_classes, **options) -> nn.Module`` under ``name``."""

    def decorator(builder: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model '{name}' is registered twice")
        MODELS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(MODELS)


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """Build architecture ``name``; load ``weights`` (a local state-dict file) when given."""
    if name not in MODELS:
        close = difflib.get_close_matches(name, list_models(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown model.arch '{name}'; {hint}available: {', '.join(list_models())}")
    try:
        model = MODELS[name](in_channels, num_classes, **(options or {}))
    except TypeError as exc:
        raise UserError(f"model.arch_options {options} do not fit '{name}': {exc}") from exc
    if weights:
        load_weights(model, weights)
    return model


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
