"""A small CNN for tiny images (digits, 32x32 crops): fast on a CPU, accurate enough to matter."""

from __future__ import annotations

from torch import nn

from mlcycle.models.layers import double_conv
from mlcycle.models.registry import register_model


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(*double_conv(cin, cout), nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    """Three conv blocks (32, 64, 128 channels), global average pooling, dropout, linear."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            _block(in_channels, width), _block(width, width * 2), _block(width * 2, width * 4)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * 4, num_classes)
        )

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


@register_model("small_cnn")
def small_cnn(
    in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.2
) -> nn.Module:
    """``--model.arch_options='{width: 16, dropout: 0}'`` sets the width and the dropout."""
    return SmallCNN(in_channels, num_classes, width=width, dropout=dropout)
