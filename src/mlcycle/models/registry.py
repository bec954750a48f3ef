"""Architectures registered by name, one registry per task. Adding one is a new file with
``@register_model`` (classification: ``(N, num_classes)`` logits), ``@register_segmentation_model``
(``(N, num_classes, H, W)`` logits, or a dict whose ``"out"`` holds them) or
``@register_detection_model`` (a torchvision-style detector; ``num_classes`` counts the
background, label 0). A builder is ``(in_channels, num_classes, **options) -> nn.Module``."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.models import timm_models
from mlcycle.models.pretrained import (
    closest,
    did_you_mean,
    fit_backbone,
    fit_state_dict,
    is_local_file,
    read_state_dict,
)

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
    pretrained: bool = False,
) -> nn.Module:
    """Build ``name`` from ``registry`` (or timm's ``timm/<name>``) and load its weights.

    ``weights`` and ``backbone_weights`` are a name (the library's weights: torchvision's
    ``IMAGENET1K_V1``, timm's ``a1_in1k``), loaded from the library's cache (downloaded when
    online), or a local ``.pth``/``.safetensors`` state dict; ``pretrained``: the default
    weights of the architecture. A builder that takes ``pretrained`` / ``backbone_pretrained``
    loads its named weights itself.
    """
    builder = find_builder(registry, name)
    kwargs = dict(options or {})
    start = named(weights, pretrained)
    if start:
        kwargs["pretrained"] = start
    if backbone_weights and not is_local_file(backbone_weights):
        kwargs["backbone_pretrained"] = backbone_weights
    for key, option in (("pretrained", "weights"), ("backbone_pretrained", "backbone_weights")):
        if key in kwargs and not _takes(builder, key):
            raise UserError(
                f"model.{option}={kwargs[key]}: '{name}' has no {option.replace('_', ' ')} by name; "
                f"give a local .pth or .safetensors file, or an architecture that has them (resnet18, timm/resnet18, ...)"
            )
    try:
        model = builder(in_channels, num_classes, **kwargs)
    except TypeError as exc:
        raise UserError(f"model.arch_options {options} do not fit '{name}': {exc}") from exc
    if backbone_weights and "backbone_pretrained" not in kwargs:
        load_backbone_weights(model, backbone_weights)
    if weights and not start:
        load_weights(model, weights)
    return model


def named(weights: str | None, pretrained: bool) -> bool | str:
    """The weights to load by name: ``weights`` unless it is a local file, else ``pretrained``."""
    if weights and is_local_file(weights):
        if pretrained:
            raise UserError(
                f"model.pretrained=true and the local file model.weights={weights} both say where to start; keep one"
            )
        return False
    return weights or pretrained


def _takes(builder: Builder, key: str) -> bool:
    try:
        return key in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def find_builder(registry: Registry[Builder], name: str) -> Builder:
    """The builder of ``name``; an unknown name lists the closest registered and timm names."""
    if timm_models.is_timm(name):
        if registry is not CLASSIFICATION_MODELS:
            raise UserError(
                f"model.arch={name}: timm models are classifiers here; for a segmentation encoder "
                f"use arch: unet with arch_options: {{encoder: {name}}}"
            )
        return partial(timm_models.build_timm, name)
    if name in registry:
        return registry.get(name)
    known = registry.names()
    if registry is CLASSIFICATION_MODELS:
        with contextlib.suppress(UserError):
            known += timm_models.names()
    raise UserError(
        f"unknown model.arch '{name}' ({registry.kind}); {did_you_mean(name, known)}"
        f"{closest(name, known)}; "
        f"registered: {', '.join(registry.names())}"
        + ("; and any timm model as timm/<name>" if registry is CLASSIFICATION_MODELS else "")
    )


def preprocessing(
    registry: Registry[Builder],
    name: str,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
    backbone_weights: str | None = None,
    pretrained: bool = False,
) -> dict[str, Any] | None:
    """The input (mean, std, image size, interpolation) the named weights of ``name`` were
    trained on, or None when the model starts from scratch or a local file. Reads no weights."""
    builder = find_builder(registry, name)
    start = named(weights, pretrained)
    backbone = (
        backbone_weights if backbone_weights and not is_local_file(backbone_weights) else False
    )
    if timm_models.is_timm(name):
        return timm_models.preprocessing(name, start)
    encoder = (options or {}).get("encoder")  # a U-Net on a timm encoder
    if isinstance(encoder, str) and timm_models.is_timm(encoder):
        return timm_models.preprocessing(encoder, start)
    find = getattr(builder, "preprocessing", None)
    return find(start, backbone) if find is not None and (start or backbone) else None


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """Build classification architecture ``name`` (``(N, num_classes)`` logits)."""
    return build_architecture(
        CLASSIFICATION_MODELS, name, in_channels, num_classes, weights, options, None, pretrained
    )


def load_weights(model: nn.Module, path: str) -> None:
    """A local ``.pth`` or ``.safetensors`` state dict onto ``model``: a head for other classes
    keeps its init, other input channels are adapted, anything else that differs is an error
    naming the first layer (:func:`~mlcycle.models.pretrained.fit_state_dict`)."""
    fit_state_dict(model, read_state_dict(path), f"'{path}'")


def load_backbone_weights(model: nn.Module, path: str) -> None:
    """A local classifier state dict into ``model.backbone`` (``.body`` for FPN detectors)."""
    fit_backbone(model, read_state_dict(path, "model.backbone_weights"), f"'{path}'")
