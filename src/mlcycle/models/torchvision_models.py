"""torchvision classifiers by name, with input channels and classes adapted to the data.

Pretrained weights by name (``model.weights: IMAGENET1K_V1``, ``model.pretrained: true`` for
DEFAULT) come through torch.hub's cache (``torchvision_weights.py``); a local file through
``model.weights: path``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torchvision
from torch import nn

from mlcycle.models import torchvision_weights
from mlcycle.models.pretrained import fit_state_dict
from mlcycle.models.registry import register_model

TORCHVISION_CLASSIFIERS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_b1",
    "convnext_tiny",
    "regnet_y_400mf",
    "vit_b_16",
)


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels != in_channels:
                    setattr(
                        parent,
                        name,
                        nn.Conv2d(
                            in_channels,
                            child.out_channels,
                            child.kernel_size,
                            child.stride,
                            child.padding,
                            child.dilation,
                            child.groups if child.groups == 1 else in_channels,
                            child.bias is not None,
                        ),
                    )
                return


def build_torchvision(
    name: str, in_channels: int, num_classes: int, pretrained: bool | str = False, **options: Any
) -> nn.Module:
    """``name`` for the data's channels and classes; ``pretrained``: weights by name (``True``:
    DEFAULT), loaded with a fresh classifier and the first convolution adapted."""
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **options)
    _replace_first_conv(model, in_channels)
    if pretrained:
        load_named(model, name, pretrained)
    return model


def load_named(model: nn.Module, name: str, tag: bool | str) -> None:
    """torchvision's weights ``tag`` of architecture ``name``, fitted onto ``model``."""
    weights = torchvision_weights.weights_enum(name, tag)
    fit_state_dict(
        model, torchvision_weights.state_dict(weights), torchvision_weights.label(weights)
    )


def preprocessing(
    name: str, pretrained: bool | str = False, backbone_pretrained: bool | str = False
) -> dict[str, Any] | None:
    """The input torchvision's weights of ``name`` expect (None without named weights)."""
    if pretrained:
        return torchvision_weights.preprocessing(torchvision_weights.weights_enum(name, pretrained))
    if backbone_pretrained:
        return torchvision_weights.preprocessing(
            torchvision_weights.backbone_enum(name, backbone_pretrained)
        )
    return None


for _name in TORCHVISION_CLASSIFIERS:
    _builder = partial(build_torchvision, _name)
    _builder.preprocessing = partial(preprocessing, _name)  # type: ignore[attr-defined]
    register_model(_name)(_builder)
