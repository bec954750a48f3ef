"""A U-Net decoder on a timm ``features_only`` encoder (``arch: unet``,
``arch_options: {encoder: timm/resnet18}``); ``model.pretrained: true`` loads the encoder's
pretrained weights (the tag in the encoder's name, else timm's default) through timm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mlcycle.models import timm_models
from mlcycle.models.layers import double_conv


class TimmUNet(nn.Module):
    """The encoder's feature maps (strides 2..32), merged from the deepest up: each step
    up-samples, concatenates the next shallower map and runs a double convolution. The logits
    come at the shallowest map's resolution, then bilinearly to the input's."""

    def __init__(self, encoder: nn.Module, num_classes: int, decoder_width: int = 32) -> None:
        super().__init__()
        self.encoder = encoder
        channels = encoder.feature_info.channels()
        widths = [max(decoder_width, c // 2) for c in channels]
        self.up = nn.ModuleList()
        below = channels[-1]
        for level in reversed(range(len(channels) - 1)):
            self.up.append(double_conv(below + channels[level], widths[level]))
            below = widths[level]
        self.head = nn.Conv2d(below, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = features.pop()
        for block in self.up:
            skip = features.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = self.head(y)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def timm_unet(
    encoder: str,
    in_channels: int,
    num_classes: int,
    pretrained: bool | str = False,
    decoder_width: int = 32,
) -> nn.Module:
    """A :class:`TimmUNet` on timm's ``encoder`` (``timm/<name>[.<tag>]``)."""
    full = timm_models.model_name(encoder, pretrained, key="model.arch_options.encoder")
    backbone = timm_models.create(full, bool(pretrained), in_chans=in_channels, features_only=True)
    return TimmUNet(backbone, num_classes, decoder_width)
