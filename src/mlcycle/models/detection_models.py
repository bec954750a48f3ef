"""Detectors by name: torchvision's four, and ``fcos_small`` for small images on a CPU.

Every detector takes the images the data module made: already resized to ``data.image_size``
and normalized with the data's mean and std. Their internal transform therefore neither
resizes nor normalizes (it only pads the batch to a multiple of 32). Pretrained by name:
``model.weights: COCO_V1`` (or ``model.pretrained: true``), ``model.backbone_weights:
IMAGENET1K_V1``, through torch.hub's cache; or local files with the same keys. Their
preprocessing default is ImageNet's mean and std (what torchvision's detectors normalize with).

``num_classes`` counts the background (label 0), as torchvision expects.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork

from mlcycle.core.errors import UserError
from mlcycle.models.layers import double_conv
from mlcycle.models.registry import register_detection_model
from mlcycle.models.segmentation_models import load_backbone_named
from mlcycle.models.torchvision_models import _replace_first_conv, load_named, preprocessing

TORCHVISION_DETECTORS = (
    "fasterrcnn_mobilenet_v3_large_fpn",
    "retinanet_resnet50_fpn",
    "fcos_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
)


class AsGivenTransform(GeneralizedRCNNTransform):
    """Batches images as they come: no resize, no normalization (the data module did both)."""

    def __init__(self, in_channels: int, size_divisible: int = 32) -> None:
        super().__init__(1, 1, [0.0] * in_channels, [1.0] * in_channels, size_divisible)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(
        self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        return image, target


def _anchors(model: nn.Module, sizes: list[int]) -> None:
    """Anchor sizes (pixels of the model's input) for Faster R-CNN and RetinaNet."""
    if isinstance(model, FasterRCNN):
        levels = len(model.rpn.anchor_generator.sizes)
        ratios = model.rpn.anchor_generator.aspect_ratios[0]
        model.rpn.anchor_generator = AnchorGenerator((tuple(sizes),) * levels, (ratios,) * levels)
        model.rpn.head = RPNHead(model.backbone.out_channels, len(sizes) * len(ratios))
    elif isinstance(model, RetinaNet):
        levels = len(model.anchor_generator.sizes)
        if len(sizes) != levels:
            raise UserError(f"model.arch_options.anchor_sizes needs {levels} sizes, one per level")
        ratios = model.anchor_generator.aspect_ratios[0]
        octaves = tuple((s, s * 2 ** (1 / 3), s * 2 ** (2 / 3)) for s in sizes)
        model.anchor_generator = AnchorGenerator(octaves, (ratios,) * levels)
    else:
        raise UserError("model.arch_options.anchor_sizes applies to Faster R-CNN and RetinaNet")


def build_torchvision_detector(
    name: str,
    in_channels: int,
    num_classes: int,
    anchor_sizes: list[int] | None = None,
    pretrained: bool | str = False,
    backbone_pretrained: bool | str = False,
    **options: Any,
) -> nn.Module:
    model = torchvision.models.get_model(
        name, weights=None, weights_backbone=None, num_classes=num_classes, **options
    )
    _replace_first_conv(model.backbone, in_channels)
    model.transform = AsGivenTransform(in_channels)
    if anchor_sizes:
        _anchors(model, anchor_sizes)
    load_backbone_named(model, name, backbone_pretrained)
    if pretrained:
        load_named(model, name, pretrained)
    return model


for _name in TORCHVISION_DETECTORS:
    _builder = partial(build_torchvision_detector, _name)
    _builder.preprocessing = partial(preprocessing, _name)  # type: ignore[attr-defined]
    register_detection_model(_name)(_builder)


def _stage(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution, then one more 3x3 convolution."""
    return double_conv(cin, cout, stride=2)


class SmallFPNBackbone(nn.Module):
    """Five stride-2 stages (strides 2..32); an FPN over the strides 8, 16 and 32."""

    def __init__(self, in_channels: int, width: int = 24, out_channels: int = 64) -> None:
        super().__init__()
        widths = [width, width * 2, width * 3, width * 4, width * 6]
        self.stages = nn.ModuleList(
            _stage(cin, cout) for cin, cout in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.fpn = FeaturePyramidNetwork(widths[2:], out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                features[str(i - 2)] = x
        return self.fpn(features)


@register_detection_model("fcos_small")
def fcos_small(
    in_channels: int,
    num_classes: int,
    width: int = 24,
    fpn_channels: int = 64,
    head_convs: int = 2,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> nn.Module:
    """torchvision's FCOS (anchor-free; focal, GIoU and centre-ness losses) on a small CNN with
    an FPN at strides 8, 16 and 32 and a light head: about 0.86M parameters."""
    backbone = SmallFPNBackbone(in_channels, width, fpn_channels)
    anchors = AnchorGenerator(((8,), (16,), (32,)), ((1.0,),) * 3)  # one point per location
    model = FCOS(
        backbone,
        num_classes,
        anchor_generator=anchors,
        head=FCOSHead(fpn_channels, 1, num_classes, num_convs=head_convs),
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
    )
    model.transform = AsGivenTransform(in_channels)
    return model
