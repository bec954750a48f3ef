"""Building blocks the small architectures share (plain torch: models never import Lightning)."""

from __future__ import annotations

from torch import nn


def double_conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Two 3x3 convolutions, each with batch norm and ReLU; the first with ``stride``."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )
