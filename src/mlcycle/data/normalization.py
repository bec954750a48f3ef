"""Per-channel normalization measured on a fixed sample of training images."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def measure_normalization(
    images: Iterable[np.ndarray], channels: int
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 units) of uint8 HxWxC images."""
    pixels = np.concatenate([im.reshape(-1, channels) for im in images]).astype(np.float64) / 255
    mean = [round(float(v), 4) for v in pixels.mean(0)]
    std = [round(max(float(v), 1e-3), 4) for v in pixels.std(0)]
    return mean, std


def sample_positions(positions: list[int], limit: int = 1024) -> list[int]:
    """Up to ``limit`` of ``positions``, the same ones every time."""
    rng = np.random.default_rng(0)
    return [int(p) for p in rng.choice(positions, size=min(len(positions), limit), replace=False)]


def weights_normalization(spec: dict[str, Any], channels: int) -> tuple[list[float], list[float]]:
    """The pretrained weights' mean and std for ``channels``: grayscale data on RGB weights
    takes the average (their first convolution sums its weights over the channels)."""
    mean, std = [float(v) for v in spec["mean"]], [float(v) for v in spec["std"]]
    if len(mean) == channels:
        return mean, std
    if channels == 1:
        return [round(sum(mean) / len(mean), 6)], [round(sum(std) / len(std), 6)]
    return [mean[0]] * channels, [std[0]] * channels
