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
    """HxW float luminance (ITU-R BT.601) of an HxW, HxWx1 or HxWx3 uint8 image."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 1:
        return pixels[..., 0]
    return pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114


def image_stats(image: np.ndarray) -> dict[str, float]:
    """The :data:`STATS` of one decoded uint8 image."""
    luma = luminance(image)
    height, width = luma.shape
    if image.ndim == 3 and image.shape[2] >= 3:
        channels = np.asarray(image[..., :3], dtype=np.int16)
        saturation = float((channels.max(axis=2) - channels.min(axis=2)).mean())
    else:
        saturation = 0.0
    dx = np.abs(np.diff(luma, axis=1)).mean() if width > 1 else 0.0
    dy = np.abs(np.diff(luma, axis=0)).mean() if height > 1 else 0.0
    return {
        "brightness": round(float(luma.mean()), 4),
        "contrast": round(float(luma.std()), 4),
        "saturation": round(saturation, 4),
        "sharpness": round(float((dx + dy) / 2), 4),
        "aspect_ratio": round(width / height, 4),
        "pixels": float(width * height),
    }
