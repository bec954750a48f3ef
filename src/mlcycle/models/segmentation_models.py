"""torchvision segmentation models by name, built without downloading anything.

Pretrained by name: ``model.weights: COCO_WITH_VOC_LABELS_V1`` (or ``model.pretrained: true``)
for the whole model, ``model.backbone_weights: IMAGENET1K_V1`` for its backbone, through
torch.hub's cache; or local files with the same keys. A head for other classes starts fresh.
They return ``{"out": logits}``; the task takes ``"out"``. The auxiliary head is off.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torchvision
from torch import nn

from mlcycle.models import torchvision_weights
from mlcycle.models.pretrained import fit_backbone
from mlcycle.models.registry import register_segmentation_model
from mlcycle.models.torchvision_models import _replace_first_conv, load_named, preprocessing

TORCHVISION_SEGMENTERS = (
    "fcn_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
)


def build_torchvision_segmenter(
    name: str,
    in_channels: int,
    num_classes: int,
    pretrained: bool | str = False,
    backbone_pretrained: bool | str = False,
    **options: Any,
) -> nn.Module:
    model = torchvision.models.get_model(
        name, weights=None, weights_backbone=None, num_classes=num_classes, **options
    )
    _replace_first_conv(model, in_channels)
    load_backbone_named(model, name, backbone_pretrained)
    if pretrained:
        load_named(model, name, pretrained)
    return model


def load_backbone_named(model: nn.Module, name: str, tag: bool | str) -> None:
    """The classifier weights torchvision's ``name`` takes as ``weights_backbone``, by name."""
    if tag:
        weights = torchvision_weights.backbone_enum(name, tag)
        state = torchvision_weights.state_dict(weights)
        fit_backbone(model, state, torchvision_weights.label(weights))


for _name in TORCHVISION_SEGMENTERS:
    _builder = partial(build_torchvision_segmenter, _name)
    _builder.preprocessing = partial(preprocessing, _name)  # type: ignore[attr-defined]
    register_segmentation_model(_name)(_builder)
