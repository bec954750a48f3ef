"""A small U-Net: fast on a CPU for small images, full-resolution logits per pixel."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mlcycle.core.errors import UserError
from mlcycle.models.layers import double_conv
from mlcycle.models.registry import register_segmentation_model


class UNet(nn.Module):
    """``depth`` down-sampling steps, channels ``width * 2**level``, skip connections, and
    bilinear up-sampling. Any input size works (odd sizes are padded back at each step)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 3):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError("depth and width must be at least 1")
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.down.extend(double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


@register_segmentation_model("unet")
def unet(
    in_channels: int,
    num_classes: int,
    width: int = 16,
    depth: int = 3,
    encoder: str | None = None,
    pretrained: bool | str = False,
    decoder_width: int = 32,
) -> nn.Module:
    """The small U-Net above; with ``encoder`` (``timm/<name>``), a U-Net decoder on timm's
    ``features_only`` encoder (``width`` and ``depth`` then unused), ``pretrained`` its weights."""
    if encoder is not None:
        from mlcycle.models.timm_unet import timm_unet

        return timm_unet(encoder, in_channels, num_classes, pretrained, decoder_width)
    if pretrained:
        raise UserError(
            "model.pretrained: the small U-Net has no pretrained weights; give it a timm encoder "
            "(arch_options: {encoder: timm/resnet18}) or a local model.weights file"
        )
    return UNet(in_channels, num_classes, width=width, depth=depth)
