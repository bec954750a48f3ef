"""Input statistics of an image, for drift monitoring: cheap, numpy only, the same numbers at
export (the reference), in the server and in batch prediction."""

from __future__ import annotations

import numpy as np

# name -> what it measures (on the decoded uint8 image, before resizing)
STATS = {
    "brightness": "mean pixel value of the luminance, 0..255",
    "contrast": "standard deviation of the luminance, 0..255",
    "saturation": "mean of max(R,G,B) - min(R,G,B), 0..255 (0 for grayscale)",
    "sharpness": "mean absolute difference between neighbouring luminance pixels",
    "aspect_ratio": "width / height",
    "pixels": "width x height",
}


def luminance(image: np.ndarray) -> np.ndarray:
    """(N)xHxW float luminance (ITU-R BT.601) of an HxW image, or of (N)xHxWx1 or (N)xHxWx3
    uint8 images."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114


def image_stats(image: np.ndarray) -> dict[str, float]:
    """The :data:`STATS` of one decoded uint8 image (HxW or HxWxC)."""
    return batch_stats((image if image.ndim == 3 else image[:, :, None])[None])[0]


def batch_stats(images: np.ndarray) -> list[dict[str, float]]:
    """The :data:`STATS` of each image of an NxHxWxC uint8 stack of equal-sized images, in one
    numpy pass (the numbers :func:`image_stats` gives each alone)."""
    luma = luminance(images)
    _, height, width = luma.shape
    if images.shape[-1] >= 3:
        channels = np.asarray(images[..., :3], dtype=np.int16)
        saturation = (channels.max(axis=3) - channels.min(axis=3)).mean(axis=(1, 2))
    else:
        saturation = np.zeros(len(images))
    zero = np.zeros(len(images), dtype=np.float32)
    dx = np.abs(np.diff(luma, axis=2)).mean(axis=(1, 2)) if width > 1 else zero
    dy = np.abs(np.diff(luma, axis=1)).mean(axis=(1, 2)) if height > 1 else zero
    columns = {
        "brightness": luma.mean(axis=(1, 2)),
        "contrast": luma.std(axis=(1, 2)),
        "saturation": saturation,
        "sharpness": (dx + dy) / 2,
    }
    rows = [{k: round(float(v[i]), 4) for k, v in columns.items()} for i in range(len(luma))]
    for row in rows:
        row.update(aspect_ratio=round(width / height, 4), pixels=float(width * height))
    return rows
