"""``tiny_dwnet``: a small depthwise-separable CNN, the architecture contract in a few lines.

An architecture is a builder ``(in_channels, num_classes, **options) -> nn.Module`` whose module
maps an ``(N, in_channels, H, W)`` batch to ``(N, num_classes)`` logits, for any H and W. Options
come from ``model.arch_options`` in the config. No Lightning and no mlcycle import: the task
builds it by name.
"""

from __future__ import annotations

from torch import nn


def _separable(channels_in: int, channels_out: int, stride: int) -> nn.Sequential:
    """A 3x3 depthwise convolution, then a 1x1 pointwise one (MobileNet's block)."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        nn.BatchNorm2d(channels_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


def tiny_dwnet(in_channels: int, num_classes: int, width: int = 16, blocks: int = 3) -> nn.Module:
    """A stem convolution, ``blocks`` separable blocks that halve the resolution and double the
    width, global average pooling and a linear classifier.

    Args:
        in_channels: image channels (from the data).
        num_classes: outputs (from the task).
        width: channels after the stem.
        blocks: separable blocks after the stem.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    channels = width
    for _ in range(blocks):
        layers.append(_separable(channels, channels * 2, stride=2))
        channels *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
