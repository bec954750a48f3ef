"""torchvision classifiers by name, with input channels and classes adapted to the data.

No weights are downloaded: pass ``model.weights`` with a local state-dict file.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torchvision
from torch import nn

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


def build_torchvision(name: str, in_channels: int, num_classes: int, **options: Any) -> nn.Module:
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **options)
    _replace_first_conv(model, in_channels)
    return model


for _name in TORCHVISION_CLASSIFIERS:
    register_model(_name)(partial(build_torchvision, _name))
