"""torchvision segmentation models by name, built without downloading anything.

``weights=None`` and ``weights_backbone=None`` always; start from a local file with
``model.weights`` (a whole-model state dict) or ``model.backbone_weights`` (a classifier's).
They return ``{"out": logits}``; the task takes ``"out"``. The auxiliary head is off.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torchvision
from torch import nn

from mlcycle.models.registry import register_segmentation_model
from mlcycle.models.torchvision_models import _replace_first_conv

TORCHVISION_SEGMENTERS = (
    "fcn_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
)


def build_torchvision_segmenter(
    name: str, in_channels: int, num_classes: int, **options: Any
) -> nn.Module:
    model = torchvision.models.get_model(
        name, weights=None, weights_backbone=None, num_classes=num_classes, **options
    )
    _replace_first_conv(model, in_channels)
    return model


for _name in TORCHVISION_SEGMENTERS:
    register_segmentation_model(_name)(partial(build_torchvision_segmenter, _name))
